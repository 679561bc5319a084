import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { apiKeysOf } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/** What must never leave a production server, unless the client itself sent it. */
const LEAKS: Array<[string, RegExp]> = [
  ['stack frame', /\bat [^\s"]+ \(?[^\s"]*:\d+:\d+\)?/],
  ['source file', /[\w-]+\.(?:ts|js|mjs|cjs):\d+/],
  ['file path', /(?:\/(?:work|home|tmp|usr|var|srv|root)\/|[A-Z]:\\\\|node_modules)/],
  ['stacktrace extension', /"stacktrace"/],
  ['SQL', /\b(?:select|insert|update|delete)\b[^"]{0,200}\b(?:from|into|set|where)\b/i],
];
/** Names of internals, which `health` reports on purpose but no error message may carry. */
const INTERNALS = /\b(?:kysely|pglite|postgres(?:ql)?|ioredis|onnxruntime|relation "|syntax error at or near)\b/i;

function leaks(responseText: string, requestText: string): string[] {
  const found = LEAKS.filter(([, pattern]) => pattern.test(responseText) && !pattern.test(requestText)).map(([name]) => name);
  let errors = '';
  try {
    errors = JSON.stringify((JSON.parse(responseText) as { errors?: unknown }).errors ?? '');
  } catch {
    errors = responseText;
  }
  if (INTERNALS.test(errors) && !INTERNALS.test(requestText)) found.push('internals in an error');
  return found;
}

const VALID = [
  '{ prediction(symbol: "AAPL") { symbol signal confidence interval(level: 0.9) { low high } } }',
  'query P($s: [String!]!, $l: Float) { predictions(symbols: $s) { symbol interval(level: $l) { low } quote { close } } }',
  '{ strategies { name activeVersion { version offlineMetrics { brier } } } }',
  'mutation R($id: ID!) { revokeApiKey(id: $id) { id } }',
  'mutation C($n: String!, $r: String!) { createApiKey(name: $n, role: $r) { apiKey { id } } }',
  '{ health { status components { name status detail } } }',
];

/** A valid operation with characters inserted or removed, or random text. */
const queryText = fc.oneof(
  fc.tuple(fc.constantFrom(...VALID), fc.nat(), fc.string({ maxLength: 8 }), fc.nat({ max: 6 })).map(([q, at, insert, cut]) => {
    const i = at % (q.length + 1);
    return q.slice(0, i) + insert + q.slice(i + cut);
  }),
  fc.constantFrom(...VALID),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
);
const variables = fc.oneof(
  fc.constant(undefined),
  fc.dictionary(fc.constantFrom('s', 'l', 'id', 'n', 'r', 'symbol', 'x'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
  fc.record({ s: fc.array(fc.string({ maxLength: 12 }), { maxLength: 20 }), l: fc.oneof(fc.double(), fc.constantFrom(0.8, 0.9, 0.95)) }),
  fc.record({ id: fc.oneof(fc.uuid(), fc.string()), n: fc.string(), r: fc.oneof(fc.constantFrom('viewer', 'admin'), fc.string()) }),
);

describe(`production mode: no stack, SQL or path in any response (${stackName})`, () => {
  let server: TestGateway;
  let adminKey: string;
  before(async () => {
    server = await startTestGateway({ NODE_ENV: 'production', RATE_LIMIT_POINTS: '100000000' });
    adminKey = (await apiKeysOf(server).create('admin')).key;
  });
  after(async () => server.close());

  test('fuzzed queries, variables and bodies over HTTP', async () => {
    const auth = fc.constantFrom<Record<string, string>>(
      {},
      { authorization: `Bearer ${'adminKey'}` },
      { authorization: 'Bearer sib_nope' },
      { authorization: 'Bearer a.b.c' },
    );
    const body = fc.oneof(
      fc.record({ query: queryText, variables }).map((b) => JSON.stringify(b)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(body, auth, async (requestBody, headers) => {
        const authorization = headers.authorization?.replace('adminKey', adminKey);
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
          body: requestBody,
        });
        const text = await response.text();
        assert.ok(response.status < 500 || response.status === 503, `HTTP ${response.status}: ${text.slice(0, 300)}`);
        assert.deepEqual(leaks(text, requestBody), [], text.slice(0, 500));
        if (text.startsWith('{')) {
          const parsed = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: unknown } }> };
          for (const error of parsed.errors ?? []) assert.equal(typeof error.extensions?.code, 'string', text.slice(0, 300));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('fuzzed queries and variables over graphql-ws', async () => {
    const client = wsClient(server.url, { connectionParams: { authorization: `Bearer ${adminKey}` } });
    try {
      await fc.assert(
        fc.asyncProperty(queryText, variables, async (query, vars) => {
          const result = await wsExecute(client, query, vars as Record<string, unknown> | undefined);
          const text = JSON.stringify(result);
          assert.deepEqual(leaks(text, JSON.stringify({ query, vars })), [], text.slice(0, 500));
          for (const error of result.errors ?? []) assert.equal(typeof error.extensions?.code, 'string', text.slice(0, 300));
        }),
        { numRuns: 100 },
      );
    } finally {
      await client.dispose();
    }
  });

  test('hostile graphql-ws frames: no close reason or message carries a stack, SQL or path', async () => {
    const url = `${server.url.replace(/^http/, 'ws')}/graphql`;
    const frame = fc.oneof(
      fc
        .record(
          {
            type: fc.constantFrom('subscribe', 'complete', 'ping', 'next', 'connection_init', 'bogus'),
            id: fc.oneof(fc.string({ maxLength: 4 }), fc.integer()),
            payload: fc.oneof(fc.anything(), fc.record({ query: queryText, variables })),
          },
          { requiredKeys: ['type'] },
        )
        .map((m) => JSON.stringify(m)),
      fc.string({ maxLength: 100 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 3 }), fc.boolean(), async (frames, authenticate) => {
        const socket = new WebSocket(url, 'graphql-transport-ws');
        const received: string[] = [];
        let close = '';
        const closed = new Promise<void>((resolve) =>
          socket.on('close', (code, reason) => ((close = `${code} ${reason.toString()}`), resolve())),
        );
        socket.on('error', () => undefined);
        socket.on('message', (data) => received.push(data.toString()));
        await new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));
        socket.send(JSON.stringify({ type: 'connection_init', payload: authenticate ? { authorization: `Bearer ${adminKey}` } : {} }));
        for (const text of frames) if (socket.readyState === WebSocket.OPEN) socket.send(text);
        await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 100))]);
        if (socket.readyState === WebSocket.OPEN) socket.close(1000);
        await closed;
        const sent = frames.join('\n');
        assert.deepEqual(leaks(close, sent), [], close);
        for (const message of received) assert.deepEqual(leaks(message, sent), [], message.slice(0, 500));
      }),
      { numRuns: 60 },
    );
  });
});
