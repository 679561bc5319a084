import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { choosePlan } from '../../src/modules/explanations/index.js';
import { HistoryRepository } from '../../src/modules/history/history.repository.js';
import { manifestSchema } from '../../src/domain/manifest.js';
import {
  ExplanationOfOneDocument,
  ExplanationsDocument,
  ExplanationsOfBothStrategiesDocument,
  PredictionsDocument,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { metricDeltas } from '../helpers/metrics.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';
import { storeOutcomes } from '../helpers/outcomes.js';

const SYMBOLS = Array.from({ length: 120 }, (_, i) => `E${String(i).padStart(3, '0')}`);
const RUNS_1D = 'sibyl_inference_runs_total{strategy="direction-1d",version="v1"}';
const RUNS_5D = 'sibyl_inference_runs_total{strategy="direction-5d",version="v1"}';
const ROWS = 'sibyl_inference_batch_size_sum';
/** Rows one explanation adds to the run: the plan's coalitions (the baseline row is shared by the run). */
const COALITIONS = choosePlan(13).coalitions.length;

const manifest = (strategy: string) =>
  manifestSchema.parse(JSON.parse(readFileSync(path.join(projectRoot, 'models', strategy, 'v1', 'manifest.json'), 'utf8')));

async function storedBars(symbols: readonly string[]): Promise<Bar[]> {
  const market = createSyntheticMarket({ symbols, seed: 5, historyBars: 130, startTime: new Date('2024-03-01T00:00:00Z') });
  return [...(await market.fetchBars(symbols, { lookback: 130 })).values()].flat().map((bar) => ({ ...bar, source: 'test-feed' }));
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe(`Prediction.explanation (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({}, { bars: await storedBars(SYMBOLS) });
  });
  after(async () => server.close());

  test('a 50-symbol query asking for explanations costs exactly one inference run beyond the predictions’ own', async () => {
    const symbols = SYMBOLS.slice(0, 50);
    const plain = await metricDeltas(server.url, [RUNS_1D], () => execute(server.url, PredictionsDocument, { symbols }));
    assert.equal(plain[RUNS_1D], 1, 'the predictions themselves: one run');

    let response!: Awaited<ReturnType<typeof execute<unknown, unknown>>>;
    const delta = await metricDeltas(server.url, [RUNS_1D, ROWS], async () => {
      response = await execute(server.url, ExplanationsDocument, { symbols });
    });
    assert.equal(response.errors, undefined);
    // Predictions now come from the cache, so every run and row here is the explanations'.
    assert.deepEqual(delta, { [RUNS_1D]: 1, [ROWS]: 1 + 50 * COALITIONS });
  });

  test('cold: predictions and explanations of 50 new symbols take two runs in all, whatever INFERENCE_MAX_BATCH (1024) says', async () => {
    const delta = await metricDeltas(server.url, [RUNS_1D], async () => {
      const { errors } = await execute(server.url, ExplanationsDocument, { symbols: SYMBOLS.slice(50, 100) });
      assert.equal(errors, undefined);
    });
    assert.ok(1 + 50 * COALITIONS > 1024, 'the explanation batch is larger than the micro-batcher’s split size');
    assert.equal(delta[RUNS_1D], 2);
  });

  test('two strategies in one query: one explanation run per model', async () => {
    const symbols = SYMBOLS.slice(0, 20);
    await execute(server.url, PredictionsDocument, { symbols, strategy: 'direction-5d' }); // warm both prediction caches
    let data!: Awaited<ReturnType<typeof execute<unknown, unknown>>>['data'];
    const delta = await metricDeltas(server.url, [RUNS_1D, RUNS_5D], async () => {
      const response = await execute(server.url, ExplanationsOfBothStrategiesDocument, { symbols });
      assert.equal(response.errors, undefined);
      data = response.data;
    });
    assert.deepEqual(delta, { [RUNS_1D]: 1, [RUNS_5D]: 1 });
    const both = data as {
      oneDay: Array<{ probability: number; explanation: { baseline: number; factors: Array<{ contribution: number }> } }>;
      fiveDay: typeof both.oneDay;
    };
    for (const p of [...both.oneDay, ...both.fiveDay]) {
      assert.ok(Math.abs(sum(p.explanation.factors.map((f) => f.contribution)) - (p.probability - p.explanation.baseline)) < 1e-3);
    }
    assert.notEqual(both.oneDay[0]!.explanation.baseline, both.fiveDay[0]!.explanation.baseline, 'each model has its own baseline');
  });

  test('every explanation is additive, complete, ordered, in plain words, and the same on every request', async () => {
    const symbols = SYMBOLS.slice(0, 10);
    const first = await execute(server.url, ExplanationsDocument, { symbols });
    const second = await execute(server.url, ExplanationsDocument, { symbols });
    assert.deepEqual(second.data, first.data, 'an explanation is a pure function of the bars and the model version');
    const m = manifest('direction-1d');
    for (const p of first.data!.predictions) {
      const e = p!.explanation;
      assert.equal(e.method, 'shapley-permutation');
      assert.ok(Math.abs(sum(e.factors.map((f) => f.contribution)) - (p!.probability - e.baseline)) < 1e-3, `${p!.symbol}: not additive`);
      assert.deepEqual(e.factors.map((f) => f.feature).sort(), [...m.features].sort());
      const sizes = e.factors.map((f) => Math.abs(f.contribution));
      assert.deepEqual(
        sizes,
        [...sizes].sort((a, b) => b - a),
        'largest contribution first',
      );
      for (const f of e.factors) {
        assert.equal(f.baselineValue, m.featureStats!.features[f.feature]!.mean);
        assert.match(f.description, /training data|usual range/);
        assert.match(f.description, /(raises|lowers|barely moves) the probability/);
      }
      assert.match(e.summary, /^\d+\.\d% against \d+\.\d% for a typical input: .+\.$/);
    }
  });

  test('the single-symbol query explains too, with the same numbers', async () => {
    const many = await execute(server.url, ExplanationsDocument, { symbols: ['E001'] });
    const one = await execute(server.url, ExplanationOfOneDocument, { symbol: 'E001' });
    assert.equal(one.data!.prediction.explanation.baseline, many.data!.predictions[0]!.explanation.baseline);
    assert.deepEqual(
      one.data!.prediction.explanation.factors,
      many.data!.predictions[0]!.explanation.factors.map(({ feature, contribution }) => ({ feature, contribution })),
    );
  });

  test('historical accuracy: the offline calibration bin until enough realized outcomes exist, then history, saying which', async () => {
    const symbol = 'E110';
    const before = (await execute(server.url, ExplanationsDocument, { symbols: [symbol] })).data!.predictions[0]!;
    const bins = manifest('direction-1d').offlineMetrics.calibration;
    const bin = bins.find((b) => before.probability >= b.lower && before.probability < b.upper)!;
    const leansUp = before.signal === 'BUY' || (before.signal === 'HOLD' && before.probability >= 0.5);
    assert.equal(before.explanation.historicalAccuracySource, 'offline');
    assert.equal(before.explanation.historicalAccuracySamples, bin.count);
    assert.ok(Math.abs(before.explanation.historicalAccuracy! - (leansUp ? bin.observedRate! : 1 - bin.observedRate!)) < 1e-12);
    assert.equal(before.explanation.historicalEvidence.days, bin.days, 'the held-out bin says how many days stand behind it');
    assert.ok(bin.days! >= 20);

    // 40 realized outcomes at this confidence (30 right), plus some that must not count: another
    // version, a confidence far outside the band, and outcomes not known yet.
    const db = server.gateway.database.db;
    const row = (i: number, version: string, confidence: number) => ({
      time: new Date(Date.UTC(2020, 0, 1) + i * 86_400_000),
      symbol: 'OUTCOME',
      strategy: 'direction-1d',
      modelVersion: version,
      horizon: '1d',
      probability: confidence,
      confidence,
      signal: 'BUY' as const,
      expectedReturn: null,
      intervalLevel: 0.95,
      intervalLow: 1,
      intervalHigh: 2,
      featuresHash: `outcome-${i}`,
      marketSource: 'stored',
    });
    const c = before.confidence;
    const rows = [
      ...Array.from({ length: 40 }, (_, i) => row(i, 'v1', Math.min(1, c + ((i % 5) - 2) * 0.004))),
      ...Array.from({ length: 10 }, (_, i) => row(100 + i, 'v0', c)),
      ...Array.from({ length: 10 }, (_, i) => row(200 + i, 'v1', c > 0.8 ? 0.5 : 0.95)),
      ...Array.from({ length: 10 }, (_, i) => row(300 + i, 'v1', c)),
    ];
    await new HistoryRepository(db).insertMany(rows);
    const mark = (hashes: string[], correct: boolean) =>
      storeOutcomes(db, {
        from: sql`prediction_history h where h.features_hash = any(${hashes}::text[])`,
        // Explanations read `correct` only; a realized return that agrees with it.
        realizedReturn: sql`case when (h.probability >= 0.5) = ${correct} then 0.01 else -0.01 end`,
        correct: sql`${correct}`,
      });
    await mark(
      rows.slice(0, 30).map((r) => r.featuresHash),
      true,
    );
    await mark(
      rows.slice(30, 40).map((r) => r.featuresHash),
      false,
    );
    await mark(
      rows.slice(40, 60).map((r) => r.featuresHash),
      false,
    );

    const after = (await execute(server.url, ExplanationsDocument, { symbols: [symbol] })).data!.predictions[0]!;
    assert.equal(after.explanation.historicalAccuracySource, 'history');
    assert.equal(after.explanation.historicalAccuracySamples, 40);
    assert.equal(after.explanation.historicalAccuracy, 0.75);
    const evidence = after.explanation.historicalEvidence;
    assert.deepEqual([evidence.accuracy, evidence.rows, evidence.days, evidence.source, evidence.reason], [0.75, 40, 40, 'history', null]);
    assert.ok(evidence.low! < 0.75 && 0.75 < evidence.high! && evidence.level === 0.95);
  });

  test('an unknown symbol among explained ones is null with UNKNOWN_SYMBOL at its path; the others are explained', async () => {
    const { data, errors } = await execute(server.url, ExplanationsDocument, { symbols: ['E002', 'NOPE', 'E003'] });
    assert.equal(data!.predictions[1], null);
    assert.equal(errors?.length, 1);
    assert.deepEqual(errors![0]!.path, ['predictions', 1]);
    assert.equal(errors![0]!.extensions?.code, 'UNKNOWN_SYMBOL');
    assert.ok(data!.predictions[0]!.explanation.factors.length === 13 && data!.predictions[2]!.explanation.factors.length === 13);
  });

  test('over graphql-ws the explanation is the same', async () => {
    const query =
      '{ predictions(symbols: ["E004"]) { explanation { method baseline summary factors { feature contribution description } } } }';
    const http = await postQuery(server.url, query);
    const client = wsClient(server.url);
    try {
      assert.deepEqual((await wsExecute(client, query)).data, http.data);
    } finally {
      await client.dispose();
    }
  });
});
