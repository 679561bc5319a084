import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parse, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { buildGatewaySchema } from '../../src/schema/build-schema.js';
import { measureOperation } from '../../src/server/cost.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';

/**
 * Random fragment graphs over the real schema, sent to a whole gateway: every answer is either data
 * whose size is within the cost the gateway charged for it, or a coded client error (never a 5xx, never
 * uncoded), and anything measured over MAX_QUERY_COST is refused. The fields generated are those whose
 * list sizes come from arguments (`predictions(symbols:)`, `history(last:)`), where cost claims an
 * upper bound; unsized lists are bounded by MAX_RESPONSE_ITEMS instead (see cost.ts).
 */
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA'];
const MAX_COST = 5_000;

function fieldsIn(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + fieldsIn(item), 0);
  if (typeof value !== 'object' || value === null) return 0;
  return Object.values(value).reduce((sum: number, child) => sum + 1 + fieldsIn(child), 0);
}

const alias = fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined, freq: 3 });
/** Aliases are per field name, so two selections share a response key only when they select the same field. */
const named = (name: fc.Arbitrary<string>) => fc.tuple(alias, name).map(([a, n]) => (a ? `${a}_${n.replace(/\W.*$/s, '')}: ${n}` : n));

/** A selection of fragment P{i} on Prediction; it may spread P{j} for j > i only (no cycles). */
function predictionSelection(i: number, count: number): fc.Arbitrary<string> {
  const options: fc.Arbitrary<string>[] = [
    named(fc.constantFrom('symbol', 'signal', 'probability', 'confidence', 'stale', 'featuresHash', 'asOf', 'horizon', 'strategy')),
    named(fc.constantFrom('quote { close time }', 'interval(level: 0.9) { low high }', 'model { version active }')),
    named(fc.integer({ min: 1, max: 5 }).map((n) => `history(last: ${n}) { time confidence }`)),
  ];
  if (i + 1 < count) options.push(fc.integer({ min: i + 1, max: count - 1 }).map((j) => `...P${j}`));
  return fc.oneof(...options);
}

function querySelection(i: number, count: number, predictionFragments: number): fc.Arbitrary<string> {
  const p = fc.integer({ min: 0, max: predictionFragments - 1 });
  const options: fc.Arbitrary<string>[] = [
    named(fc.constant('__typename')),
    named(fc.constant('health { status version }')),
    named(p.map((j) => `prediction(symbol: "AAPL") { ...P${j} }`)),
    named(fc.tuple(fc.subarray(SYMBOLS, { minLength: 1 }), p).map(([s, j]) => `predictions(symbols: ${JSON.stringify(s)}) { ...P${j} }`)),
  ];
  if (i + 1 < count) options.push(fc.integer({ min: i + 1, max: count - 1 }).map((j) => `...Q${j}`));
  return fc.oneof(...options);
}

const operations = fc
  .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }))
  .chain(([q, p]) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: q }, (_, i) => fc.array(querySelection(i, q, p), { minLength: 1, maxLength: 4 }))),
      fc.tuple(...Array.from({ length: p }, (_, i) => fc.array(predictionSelection(i, p), { minLength: 1, maxLength: 5 }))),
    ),
  )
  .map(
    ([queries, predictions]) =>
      // Every fragment is spread from the operation too: validation refuses unused fragments.
      `query F { ${queries.map((_, i) => `...Q${i}`).join(' ')} all: prediction(symbol: "MSFT") { ${predictions.map((_, i) => `...P${i}`).join(' ')} } } ${queries.map((body, i) => `fragment Q${i} on Query { ${body.join(' ')} }`).join(' ')} ${predictions
        .map((body, i) => `fragment P${i} on Prediction { ${body.join(' ')} }`)
        .join(' ')}`,
  );

describe(`fragment graphs against a gateway (${stackName})`, () => {
  let server: TestGateway;
  let schema: GraphQLSchema;
  before(async () => {
    // New bars and the monitor's predictions of them: history(last:) has rows to return.
    server = await startTestGateway({ SYNTHETIC_TICK_MS: '50', SIGNALS_WATCHLIST: SYMBOLS.join(','), HISTORY_FLUSH_INTERVAL_MS: '20' });
    schema = await buildGatewaySchema();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const response = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: `{ ${SYMBOLS.map((s, i) => `s${i}: prediction(symbol: "${s}") { history(last: 5) { time } }`).join(' ')} }`,
        }),
      });
      const { data } = (await response.json()) as { data?: Record<string, { history: unknown[] }> };
      if (data && Object.values(data).every((p) => p.history.length === 5)) break;
      assert.ok(Date.now() < deadline, 'history rows recorded in time');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  after(async () => server.close());

  test('data never exceeds its cost; everything else is a coded client error; over the cost limit is refused', async () => {
    const seen = { served: 0, refused: 0 };
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(operations, async (query) => {
        const response = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query }),
        });
        const body = (await response.json()) as { data?: unknown; errors?: GraphQLFormattedError[] };
        assert.ok(response.status < 500, `${response.status} for ${query}: ${JSON.stringify(body).slice(0, 300)}`);
        for (const error of body.errors ?? []) assert.equal(typeof error.extensions?.code, 'string', JSON.stringify(error));
        let measured: number | undefined;
        try {
          measured = measureOperation(schema, parse(query), 'F', {}, 200).cost;
        } catch {
          measured = undefined; // refused by the measure itself: the gateway must have refused too
        }
        if (body.data && !body.errors) {
          seen.served++;
          assert.ok(measured !== undefined && measured <= MAX_COST, `served although measured ${measured}: ${query}`);
          assert.ok(fieldsIn(body.data) <= measured, `${fieldsIn(body.data)} fields returned for cost ${measured}: ${query}`);
        } else {
          seen.refused++;
          codes.add(String(body.errors?.[0]?.extensions?.code));
        }
        if (measured !== undefined && measured > MAX_COST) assert.equal(body.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX');
      }),
      { numRuns: 80, seed: 17 },
    );
    assert.ok(
      seen.served > 20,
      `enough generated operations are served to compare (${JSON.stringify(seen)}, refused with ${[...codes].join(', ')})`,
    );
  });
});
