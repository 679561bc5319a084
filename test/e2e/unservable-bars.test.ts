import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { PredictionDocument, PredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/**
 * Bars stored before the serving rules existed (or by a writer that skips them) can still hold finite
 * extremes. Each such symbol must answer with its own MODEL_OUTPUT_INVALID, never an internal error,
 * while the symbols beside it are served, and nothing unservable may be recorded in history.
 */
const GOOD = ['OK1', 'OK2'];

async function barsOf(symbols: readonly string[]): Promise<Map<string, Bar[]>> {
  const market = createSyntheticMarket({ symbols, seed: 7, historyBars: 120, startTime: new Date('2024-03-01T00:00:00Z') });
  return market.fetchBars(symbols, { lookback: 120 });
}

/** The symbol's synthetic bars with the last one (or the last two) replaced. */
function withLast(list: readonly Bar[], ...replacements: Array<Partial<Bar>>): Bar[] {
  const out = list.map((bar) => ({ ...bar }));
  replacements.forEach((change, i) => {
    const index = out.length - replacements.length + i;
    out[index] = { ...out[index]!, ...change };
  });
  return out;
}

describe(`symbols with extreme stored bars (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    const base = await barsOf([...GOOD, 'DVOL', 'SPIKE', 'WIDE']);
    const huge = { open: 1e308, high: 1e308, low: 1e308, close: 1e308, adjClose: 1e308 };
    const bars = [
      ...base.get('OK1')!,
      ...base.get('OK2')!,
      // close × volume overflows: the dollar-volume feature is not finite.
      ...withLast(base.get('DVOL')!, { ...huge, adjClose: base.get('DVOL')!.at(-1)!.adjClose, volume: 1e6 }),
      // The import: 1e-320, then 1e308: the 1-bar log return is Infinity.
      ...withLast(base.get('SPIKE')!, { open: 1e-320, high: 1e-320, low: 1e-320, close: 1e-320, adjClose: 1e-320 }, huge),
      // Finite features and probability, but the price interval around a close this near the largest
      // double overflows, however narrow the interval (a flat bar makes it very narrow).
      ...withLast(base.get('WIDE')!, {
        open: 1.7976e308,
        high: 1.7976e308,
        low: 1.7976e308,
        close: 1.7976e308,
        adjClose: base.get('WIDE')!.at(-1)!.adjClose,
        volume: 0,
      }),
    ].map((bar) => ({ ...bar, source: 'test-feed' }));
    server = await startTestGateway({}, { bars });
  });
  after(async () => server?.close());

  test('each bad symbol is null with MODEL_OUTPUT_INVALID at its own path; the others are served; nothing bad is recorded', async () => {
    const symbols = ['OK1', 'DVOL', 'SPIKE', 'WIDE', 'OK2'];
    for (const strategy of ['direction-1d', 'direction-5d']) {
      const { data, errors } = await execute(server.url, PredictionsDocument, { symbols, strategy, level: 0.99 });
      const list = data!.predictions;
      assert.deepEqual(
        list.map((p) => p?.symbol ?? null),
        ['OK1', null, null, null, 'OK2'],
      );
      for (const p of [list[0]!, list[4]!])
        assert.ok(Number.isFinite(p.probability) && Number.isFinite(p.interval.high) && Number.isFinite(p.interval.low));
      assert.deepEqual(
        errors?.map((e) => [e.path?.join('.'), e.extensions?.code]),
        [
          ['predictions.1', 'MODEL_OUTPUT_INVALID'],
          ['predictions.2', 'MODEL_OUTPUT_INVALID'],
          ['predictions.3', 'MODEL_OUTPUT_INVALID'],
        ],
      );
      assert.match(errors![0]!.message, /^the prediction for "DVOL" cannot be served: feature dollar_volume_z20 is (NaN|-?Infinity)/);
      assert.match(errors![1]!.message, /^the prediction for "SPIKE" cannot be served: feature ret_1d is Infinity/);
      assert.match(errors![2]!.message, /"WIDE" cannot be served: interval\(level: [0-9.]+\)\.(high|low) is Infinity/);
    }
    // Asked again (features and probabilities come from the caches now for the good ones): the same.
    const again = await execute(server.url, PredictionDocument, { symbol: 'WIDE' });
    assert.equal(again.data, null);
    assert.equal(again.errors?.[0]?.extensions?.code, 'MODEL_OUTPUT_INVALID');

    assert.equal(await server.gateway.history.flush(), true);
    const recorded = await server.gateway.database.db
      .selectFrom('prediction_history')
      .select(['symbol', 'strategy'])
      .distinct()
      .orderBy('symbol')
      .orderBy('strategy')
      .execute();
    assert.deepEqual(
      recorded.map((r) => `${r.symbol}/${r.strategy}`),
      ['OK1/direction-1d', 'OK1/direction-5d', 'OK2/direction-1d', 'OK2/direction-5d'],
    );
  });

  test('the same over WebSocket, explanations included', async () => {
    const client = wsClient(server.url);
    try {
      const { data, errors } = await wsExecute<{ predictions: Array<{ symbol: string; explanation: { factors: unknown[] } } | null> }>(
        client,
        '{ predictions(symbols: ["DVOL", "OK1", "WIDE"]) { symbol probability interval(level: 0.99) { high } explanation { baseline factors { value contribution } } } }',
      );
      assert.deepEqual(
        data?.predictions.map((p) => p?.symbol ?? null),
        [null, 'OK1', null],
      );
      assert.equal(data!.predictions[1]!.explanation.factors.length, 13);
      assert.deepEqual(
        errors?.map((e) => [e.path?.join('.'), e.extensions?.code]),
        [
          ['predictions.0', 'MODEL_OUTPUT_INVALID'],
          ['predictions.2', 'MODEL_OUTPUT_INVALID'],
        ],
      );
    } finally {
      await client.dispose();
    }
  });
});
