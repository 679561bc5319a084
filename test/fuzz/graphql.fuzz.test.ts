import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { print } from 'graphql';
import { PredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';

/**
 * Hostile and broken HTTP requests against a whole gateway: random documents, mangled valid ones,
 * valid documents with arbitrary variables, arbitrary JSON bodies and non-JSON bodies. Every answer is
 * a client error or a result (never a 5xx), every GraphQL error carries a code, no stack trace leaves
 * the server, and the process takes no unhandled rejection.
 */
const VALID = print(PredictionsDocument);
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA'];

interface Answer {
  status: number;
  text: string;
}

describe(`GraphQL over HTTP fuzz (${stackName})`, () => {
  let server: TestGateway;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  before(async () => {
    process.on('unhandledRejection', onRejection);
    server = await startTestGateway({ SYNTHETIC_TICK_MS: '0' });
  });
  after(async () => {
    await server.close();
    process.off('unhandledRejection', onRejection);
  });

  async function post(body: string, contentType = 'application/json'): Promise<Answer> {
    const response = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: response.status, text: await response.text() };
  }

  function assertWellFormed(answer: Answer, what: unknown): void {
    assert.ok(answer.status < 500, `no 5xx for ${JSON.stringify(what).slice(0, 300)}: got ${answer.status} ${answer.text.slice(0, 300)}`);
    assert.doesNotMatch(answer.text, /\n\s+at |node_modules|\/src\//, 'no stack trace or file path');
    let body: { errors?: Array<{ message?: unknown; extensions?: { code?: unknown } }> } | undefined;
    try {
      body = JSON.parse(answer.text) as typeof body;
    } catch {
      // fastify's own 4xx answers (e.g. an unparseable JSON body) are JSON too, but a 4xx need not be.
      assert.ok(answer.status >= 400, `a non-JSON answer must be a client error: ${answer.text.slice(0, 200)}`);
      return;
    }
    for (const error of body?.errors ?? []) {
      assert.equal(typeof error.message, 'string');
      assert.equal(typeof error.extensions?.code, 'string', `every error has a code: ${JSON.stringify(error).slice(0, 300)}`);
    }
  }

  test('random and mangled documents', async () => {
    const mangled = fc
      .tuple(fc.nat(VALID.length), fc.nat(40), fc.string({ maxLength: 8 }))
      .map(([at, cut, insert]) => VALID.slice(0, at) + insert + VALID.slice(at + cut));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 }), mangled), async (query) => {
        assertWellFormed(await post(JSON.stringify({ query, variables: { symbols: SYMBOLS } })), query);
      }),
      { numRuns: 150 },
    );
  });

  test('a valid document with arbitrary variables', async () => {
    const variables = fc.oneof(
      fc.record({ symbols: fc.anything(), strategy: fc.anything(), level: fc.anything() }, { requiredKeys: [] }),
      fc.record({
        symbols: fc.array(fc.oneof(fc.constantFrom(...SYMBOLS, 'ZZZZ', 'aapl', '', 'A'.repeat(50), 'BRK.B', '../x'), fc.string()), {
          maxLength: 6,
        }),
        strategy: fc.oneof(fc.constantFrom('direction-1d', 'direction-5d', 'nope', ''), fc.string()),
        level: fc.oneof(fc.constantFrom(0.8, 0.9, 0.95, 0.99, 0, 1, -1, 2), fc.double()),
      }),
      fc.jsonValue(),
    );
    await fc.assert(
      fc.asyncProperty(variables, async (vars) => {
        assertWellFormed(await post(JSON.stringify({ query: VALID, variables: vars })), vars);
      }),
      { numRuns: 150 },
    );
  });

  test('arbitrary bodies: JSON of any shape, broken JSON, other content types', async () => {
    const body = fc.oneof(
      fc.jsonValue().map((v) => ({ text: JSON.stringify(v), type: 'application/json' })),
      fc.string({ maxLength: 200 }).map((text) => ({ text, type: 'application/json' })),
      fc.string({ maxLength: 200 }).map((text) => ({ text, type: 'text/plain' })),
      fc
        .record(
          { query: fc.anything(), variables: fc.anything(), operationName: fc.anything(), extensions: fc.anything() },
          { requiredKeys: [] },
        )
        .map((v) => ({ text: JSON.stringify(v) ?? 'null', type: 'application/json' })),
    );
    await fc.assert(
      fc.asyncProperty(body, async ({ text, type }) => {
        assertWellFormed(await post(text, type), text);
      }),
      { numRuns: 150 },
    );
  });

  test('after all that the gateway is alive, serves a normal query, and took no unhandled rejection', async () => {
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
    const answer = await post(JSON.stringify({ query: VALID, variables: { symbols: SYMBOLS } }));
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.text) as { errors?: unknown }).errors, undefined);
    assert.deepEqual(rejections, []);
  });
});
