import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { print } from 'graphql';
import WebSocket from 'ws';
import { PredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/**
 * Hostile graphql-ws traffic: after a proper connection_init, arbitrary frames (random text, JSON of
 * any shape, protocol messages with wrong fields, binary). The server either answers with a protocol
 * message or closes the socket with a 4xxx/1009 code and a reason; it never closes with 1011 (internal
 * error), never crashes, and a well-behaved client on another connection keeps being served.
 */
const VALID = print(PredictionsDocument);

type Frame = { kind: 'text'; data: string } | { kind: 'binary'; data: Uint8Array };

describe(`graphql-ws fuzz (${stackName})`, () => {
  let server: TestGateway;
  let url: string;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  before(async () => {
    process.on('unhandledRejection', onRejection);
    server = await startTestGateway({ SYNTHETIC_TICK_MS: '0' });
    url = `${server.url.replace(/^http/, 'ws')}/graphql`;
  });
  after(async () => {
    await server.close();
    process.off('unhandledRejection', onRejection);
  });

  /** Opens, inits, sends `frames`, and reports how the socket ended (or that it is still open). */
  async function session(frames: readonly Frame[]): Promise<{ close?: { code: number; reason: string }; messages: unknown[] }> {
    const socket = new WebSocket(url, 'graphql-transport-ws');
    const messages: unknown[] = [];
    let close: { code: number; reason: string } | undefined;
    const closed = new Promise<void>((resolve) =>
      socket.on('close', (code, reason) => {
        close = { code, reason: reason.toString() };
        resolve();
      }),
    );
    socket.on('error', () => undefined);
    socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as unknown));
    await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    for (const frame of frames) {
      if (socket.readyState !== WebSocket.OPEN) break;
      socket.send(frame.data, { binary: frame.kind === 'binary' });
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 150))]);
    if (socket.readyState === WebSocket.OPEN) socket.close(1000);
    await closed;
    return close?.code === 1000 ? { messages } : { close, messages };
  }

  const protocolMessage = fc.record(
    {
      type: fc.oneof(
        fc.constantFrom('connection_init', 'subscribe', 'complete', 'ping', 'pong', 'next', 'error', 'connection_ack'),
        fc.string(),
      ),
      id: fc.oneof(fc.uuid(), fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)),
      payload: fc.oneof(
        fc.anything(),
        fc.record(
          { query: fc.oneof(fc.constant(VALID), fc.string({ maxLength: 80 }), fc.anything()), variables: fc.anything() },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: ['type'] },
  );
  const frame: fc.Arbitrary<Frame> = fc.oneof(
    protocolMessage.map((m) => ({ kind: 'text' as const, data: JSON.stringify(m) })),
    fc.jsonValue().map((v) => ({ kind: 'text' as const, data: JSON.stringify(v) ?? 'null' })),
    fc.string({ maxLength: 100 }).map((data) => ({ kind: 'text' as const, data })),
    fc.uint8Array({ maxLength: 50 }).map((data) => ({ kind: 'binary' as const, data })),
  );

  test('arbitrary frames after init: protocol answers or a clean 4xxx close, never an internal error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
        const { close } = await session(frames);
        if (close) {
          assert.ok(
            close.code === 1009 || (close.code >= 4400 && close.code < 4500),
            `closed with ${close.code} ${close.reason} after ${JSON.stringify(frames).slice(0, 300)}`,
          );
          assert.ok(close.reason.length > 0, 'a close says why');
          assert.doesNotMatch(close.reason, /\n\s+at |node_modules/);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('a client sending a server-only message type is a protocol error (4400), not an internal one', async () => {
    for (const type of ['connection_ack', 'next', 'error']) {
      const { close } = await session([{ kind: 'text', data: JSON.stringify({ type, id: '1', payload: {} }) }]);
      assert.equal(close?.code, 4400, `${type}: ${JSON.stringify(close)}`);
    }
  });

  test('an oversized frame is refused by closing, and the server goes on', async () => {
    const { close } = await session([
      { kind: 'text', data: JSON.stringify({ type: 'subscribe', id: '1', payload: { query: `{ ${'a'.repeat(100_000)} }` } }) },
    ]);
    assert.ok(close && close.code >= 4400 && close.code < 4500, JSON.stringify(close));
  });

  test('a well-behaved client is served afterwards, and nothing was left unhandled', async () => {
    const client = wsClient(server.url);
    try {
      const result = await wsExecute<{ predictions: unknown[] }>(client, VALID, { symbols: ['AAPL', 'MSFT'] });
      assert.equal(result.errors, undefined);
      assert.equal(result.data!.predictions.length, 2);
    } finally {
      await client.dispose();
    }
    assert.deepEqual(rejections, []);
  });
});
