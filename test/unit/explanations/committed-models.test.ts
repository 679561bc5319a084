import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CacheTier } from '../../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../../src/infra/cache/memory.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { applyPlatt } from '../../../src/domain/calibration.js';
import { ModelRegistry, type ModelVersionEntry } from '../../../src/modules/models/index.js';
import { PredictionService, type CachedFeatures, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { ExplanationService, exactPlan, type AccuracySource, type Explanation } from '../../../src/modules/explanations/index.js';
import { writeCoalitionRows } from '../../../src/modules/explanations/shapley.js';
import { clusteredCounts as statisticsOf } from '../../../src/domain/statistics.js';
import { projectRoot } from '../../helpers/process.js';
import { tempDir } from '../../helpers/services.js';

const SYMBOLS = Array.from({ length: 24 }, (_, i) => `X${String(i).padStart(2, '0')}`);
const silent = createLogger({ level: 'silent', format: 'json' });
const noOutcomes: AccuracySource = {
  evidenceInBands: async (bands) => bands.map(() => ({ samples: 0, correct: 0, days: 0, sumRows2: 0, sumCorrect2: 0, sumCorrectRows: 0 })),
};

async function loadRegistry(directory: string): Promise<ModelRegistry> {
  return ModelRegistry.load({ directory, engine: createOnnxEngine(), batching: { maxBatchSize: 64, maxQueueDelayMs: 0 }, logger: silent });
}

function predictionService(registry: ModelRegistry): PredictionService {
  const cache = createMemoryCache();
  const none = () => undefined;
  const market = createSyntheticMarket({ symbols: SYMBOLS, seed: 11, historyBars: 400, startTime: new Date('2024-01-01') });
  return new PredictionService({
    market,
    registry,
    caches: {
      market: new CacheTier<Bar[]>(cache, 'market', 0, none),
      features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
      predictions: new CacheTier<number>(cache, 'predictions', 0, none),
    },
    maxSymbolsPerRequest: 200,
    logger: silent,
  });
}

async function predict(registry: ModelRegistry, strategy: string): Promise<PredictionRecord[]> {
  const results = await predictionService(registry)
    .createLoaders()
    .prediction.loadMany(SYMBOLS.map((symbol) => ({ strategy, symbol })));
  for (const r of results) assert.ok(!(r instanceof Error), String(r));
  return results as PredictionRecord[];
}

/** Exact Shapley values of one record, computed independently of the service (all 8,190 coalitions). */
async function exactShapley(
  model: ModelVersionEntry,
  record: PredictionRecord,
): Promise<{ phi: Float64Array; baseline: number; full: number }> {
  const stats = model.manifest.featureStats!;
  const baseline = model.manifest.features.map((name) => stats.features[name]!.mean);
  const x = model.featureOrder.map((i) => record.features[i]!);
  const plan = exactPlan(baseline.length);
  const d = baseline.length;
  const rows = plan.coalitions.length + 2;
  const input = new Float32Array(rows * d);
  writeCoalitionRows(plan, x, baseline, input, 0);
  input.set(baseline, plan.coalitions.length * d);
  input.set(x, (plan.coalitions.length + 1) * d);
  const raw = await model.model.run(input, rows);
  const calibrated = Array.from(raw, (p) => applyPlatt(model.manifest.calibration, p));
  const [baselineValue, full] = calibrated.slice(-2) as [number, number];
  return { phi: plan.attribute(calibrated.slice(0, -2), baselineValue, full), baseline: baselineValue, full };
}

const sum = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0);

describe('explanations of every committed model', () => {
  let registry: ModelRegistry;
  before(async () => {
    registry = await loadRegistry(path.join(projectRoot, 'models'));
  });
  after(() => registry.close());

  test('the committed models are all here, each with training statistics for every feature', () => {
    const versions = registry.strategies().flatMap((s) => registry.versionsOf(s));
    assert.ok(versions.length >= 2, `found ${versions.length} model versions`);
    for (const { manifest } of versions) {
      for (const name of manifest.features)
        assert.ok(manifest.featureStats?.features[name], `${manifest.strategy}@${manifest.version}: no stats for ${name}`);
    }
  });

  test('each committed manifest records, from the training CLI, held-out 95% coverage in 93–97% and post-calibration ECE ≤ 0.03', () => {
    for (const { manifest } of registry.strategies().flatMap((s) => registry.versionsOf(s))) {
      const name = `${manifest.strategy}@${manifest.version}`;
      const coverage = manifest.offlineMetrics.intervalCoverage['0.95'];
      assert.ok(coverage !== undefined && coverage >= 0.93 && coverage <= 0.97, `${name}: 95% interval coverage ${coverage}`);
      assert.ok(manifest.offlineMetrics.ece <= 0.03, `${name}: ECE ${manifest.offlineMetrics.ece}`);
      assert.ok(manifest.offlineMetrics.ece < manifest.offlineMetrics.eceBeforeCalibration, `${name}: calibration did not lower ECE`);
      assert.deepEqual(Object.keys(manifest.interval.quantiles).sort(), ['0.8', '0.9', '0.95', '0.99']);
    }
  });

  for (const strategy of ['direction-1d', 'direction-5d']) {
    test(`${strategy}: contributions sum to probability − baseline (efficiency), for every version and symbol`, async () => {
      for (const model of registry.versionsOf(strategy)) {
        const records = await predict(registry, strategy);
        const explanations = await new ExplanationService({ outcomes: noOutcomes, logger: silent })
          .createLoaders()
          .explanation.loadMany(records);
        explanations.forEach((e, i) => {
          assert.ok(!(e instanceof Error), String(e));
          const record = records[i]!;
          assert.equal(e.factors.length, model.manifest.features.length);
          const gap = Math.abs(sum(e.factors.map((f) => f.contribution)) - (record.probability - e.baseline));
          assert.ok(gap < 1e-9, `${record.symbol}: contributions miss probability − baseline by ${gap}`);
          assert.ok(e.baseline > 0 && e.baseline < 1);
        });
      }
    });

    test(`${strategy}: sampled values match exact Shapley (all 8,190 coalitions) to 1e-5 on typical inputs, and the served probability is what the model gives x`, async (t) => {
      const model = registry.active(strategy)!;
      const records = await predict(registry, strategy);
      const explanations = (await new ExplanationService({ outcomes: noOutcomes, logger: silent })
        .createLoaders()
        .explanation.loadMany(records)) as Explanation[];
      let worst = 0;
      for (const [i, record] of records.entries()) {
        const exact = await exactShapley(model, record);
        assert.ok(Math.abs(exact.full - record.probability) < 1e-6, `served ${record.probability}, model on x ${exact.full}`);
        assert.ok(Math.abs(exact.baseline - explanations[i]!.baseline) < 1e-12);
        for (const factor of explanations[i]!.factors) {
          const j = model.manifest.features.indexOf(factor.feature);
          worst = Math.max(worst, Math.abs(factor.contribution - exact.phi[j]!));
        }
      }
      t.diagnostic(`${strategy}: largest |sampled − exact| contribution over ${records.length} symbols: ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-5, `largest difference from exact: ${worst}`);
    });
  }
});

describe('explanation runs', () => {
  let registry: ModelRegistry;
  before(async () => {
    registry = await loadRegistry(path.join(projectRoot, 'models'));
  });
  after(() => registry.close());

  test('all explanations of a batch share one run; past maxRowsPerRun they split into runs that give the same values', async () => {
    const model = registry.active('direction-1d')!;
    const records = await predict(registry, 'direction-1d');
    const runs: number[] = [];
    const original = model.batcher.scoreAsOneRun.bind(model.batcher);
    model.batcher.scoreAsOneRun = (input, rows) => {
      runs.push(rows);
      return original(input, rows);
    };
    try {
      const whole = (await new ExplanationService({ outcomes: noOutcomes, logger: silent })
        .createLoaders()
        .explanation.loadMany(records)) as Explanation[];
      const perRecord = (runs[0]! - 1) / records.length;
      assert.deepEqual(runs, [1 + records.length * perRecord]);
      runs.length = 0;
      const split = (await new ExplanationService({ outcomes: noOutcomes, logger: silent, maxRowsPerRun: 1 + 5 * perRecord })
        .createLoaders()
        .explanation.loadMany(records)) as Explanation[];
      assert.deepEqual(
        runs,
        [5, 5, 5, 5, 4].map((n) => 1 + n * perRecord),
      );
      assert.deepEqual(split, whole);
    } finally {
      model.batcher.scoreAsOneRun = original;
    }
  });
});

describe('explanation failure paths', () => {
  let registry: ModelRegistry;
  const dir = tempDir('sibyl-models-');
  before(async () => {
    // direction-1d as committed; direction-5d with its manifest's featureStats removed.
    for (const strategy of ['direction-1d', 'direction-5d']) {
      const from = path.join(projectRoot, 'models', strategy, 'v1');
      const to = path.join(dir.dir, strategy, 'v1');
      await mkdir(to, { recursive: true });
      await copyFile(path.join(from, 'model.onnx'), path.join(to, 'model.onnx'));
      const manifest = JSON.parse(readFileSync(path.join(from, 'manifest.json'), 'utf8'));
      if (strategy === 'direction-5d') delete manifest.featureStats;
      await writeFile(path.join(to, 'manifest.json'), JSON.stringify(manifest));
    }
    registry = await loadRegistry(dir.dir);
  });
  after(async () => {
    await registry.close();
    dir.remove();
  });

  test('a manifest without training statistics still serves predictions; its explanations are UNAVAILABLE, saying why', async () => {
    const records = await predict(registry, 'direction-5d');
    const [explanation] = await new ExplanationService({ outcomes: noOutcomes, logger: silent })
      .createLoaders()
      .explanation.loadMany(records.slice(0, 1));
    assert.ok(explanation instanceof Error);
    assert.equal((explanation as Error & { extensions: { code: string } }).extensions.code, 'UNAVAILABLE');
    assert.match(
      explanation.message,
      /direction-5d@v1: its manifest has no training statistics \(featureStats\) for any feature; retrain with npm run train/,
    );
  });

  test('an inference failure is UNAVAILABLE without internals, logged once, and spares other models', async () => {
    const logged: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      format: 'json',
      destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
    });
    const model = registry.active('direction-1d')!;
    const records = await predict(registry, 'direction-1d');
    const original = model.batcher.scoreAsOneRun.bind(model.batcher);
    model.batcher.scoreAsOneRun = () => Promise.reject(new Error('onnxruntime: out of memory at 0xdeadbeef'));
    try {
      const results = await new ExplanationService({ outcomes: noOutcomes, logger })
        .createLoaders()
        .explanation.loadMany(records.slice(0, 3));
      for (const result of results) {
        assert.ok(result instanceof Error);
        assert.equal((result as Error & { extensions: { code: string } }).extensions.code, 'UNAVAILABLE');
        assert.match(result.message, /explanations \(direction-1d@v1\) are unavailable right now/);
        assert.doesNotMatch(result.message, /deadbeef|onnxruntime/);
      }
      assert.equal(logged.length, 1);
    } finally {
      model.batcher.scoreAsOneRun = original;
    }
  });

  test('when realized outcomes cannot be read, accuracy falls back to the offline figure and says so', async () => {
    const logged: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'warn',
      format: 'json',
      destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
    });
    const failing: AccuracySource = { evidenceInBands: () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const records = await predict(registry, 'direction-1d');
    const results = await new ExplanationService({ outcomes: failing, logger }).createLoaders().explanation.loadMany(records);
    for (const result of results) {
      assert.ok(!(result instanceof Error), String(result));
      assert.notEqual(result.historicalAccuracySource, 'history');
    }
    assert.ok(results.some((r) => !(r instanceof Error) && r.historicalAccuracySource === 'offline'));
    assert.equal(logged.length, 1);
    assert.match(String(logged[0]!.msg), /realized outcomes are unavailable/);
  });

  test('historical accuracy counts distinct days: thin history falls back to a well-evidenced held-out bin, else null with the reason; enough days give history with its interval', async () => {
    const registry1d = registry;
    const [base] = await predict(registry1d, 'direction-1d');
    const at = (probability: number): PredictionRecord => ({
      ...base!,
      featuresHash: `${base!.featuresHash}-${probability}`,
      probability,
      confidence: Math.max(probability, 1 - probability),
      signal: probability >= 0.5 ? 'BUY' : 'SELL',
    });
    const records = [at(0.53), at(0.65), at(0.45)];
    const asked: Array<readonly unknown[]> = [];
    const source = (days: number): AccuracySource => ({
      evidenceInBands: async (bands) => {
        asked.push(bands);
        // 40 outcomes, 30 right, spread evenly over `days` days (as sums of per-day counts).
        const perDay = Array.from({ length: days }, (_, d) => ({ rows: Math.floor(40 / days) + (d < 40 % days ? 1 : 0), hits: 0 }));
        let left = 30;
        for (const d of perDay) left -= d.hits = Math.min(d.rows, Math.ceil((30 * d.rows) / 40), left);
        const c = statisticsOf(perDay);
        return bands.map(() => ({
          samples: c.rows,
          correct: c.hits,
          days: c.clusters,
          sumRows2: c.sumRows2,
          sumCorrect2: c.sumHits2,
          sumCorrectRows: c.sumHitsRows,
        }));
      },
    });
    const bins = registry1d.active('direction-1d')!.manifest.offlineMetrics.calibration;

    const thin = (await new ExplanationService({ outcomes: source(8), logger: silent })
      .createLoaders()
      .explanation.loadMany(records)) as Explanation[];
    assert.equal(asked.length, 1, 'one lookup for the whole request');
    assert.equal(asked[0]!.length, 3, 'one band per distinct (model, band)');
    // p 0.53: the held-out bin [0.5, 0.6) stands on hundreds of days.
    const mid = bins[5]!;
    assert.equal(thin[0]!.historicalAccuracySource, 'offline');
    assert.equal(thin[0]!.historicalAccuracy, mid.observedRate);
    assert.deepEqual([thin[0]!.historicalEvidence.rows, thin[0]!.historicalEvidence.days], [mid.count, mid.days]);
    assert.deepEqual([thin[0]!.historicalEvidence.low, thin[0]!.historicalEvidence.high], [mid.observedRateLow, mid.observedRateHigh]);
    assert.ok(mid.days! >= 20 && mid.observedRateLow! <= mid.observedRate! && mid.observedRate! <= mid.observedRateHigh!);
    // p 0.65: the bin [0.6, 0.7) holds 34 rows from 8 days of March 2020 — thin, like the 8 days of history.
    const high = bins[6]!;
    assert.ok(high.days! < 20, `bin [0.6, 0.7) days: ${high.days}`);
    assert.equal(thin[1]!.historicalAccuracy, null);
    assert.equal(thin[1]!.historicalAccuracySource, 'none');
    assert.equal(thin[1]!.historicalAccuracySamples, 0);
    assert.deepEqual(
      [
        thin[1]!.historicalEvidence.accuracy,
        thin[1]!.historicalEvidence.low,
        thin[1]!.historicalEvidence.rows,
        thin[1]!.historicalEvidence.days,
      ],
      [null, null, 40, 8],
    );
    assert.match(thin[1]!.historicalEvidence.reason!, /40 realized outcome\(s\) on 8 day\(s\) at this confidence/);
    assert.match(
      thin[1]!.historicalEvidence.reason!,
      new RegExp(`held-out bin \\[0.6, 0.7\\) has ${high.count} outcome\\(s\\) on ${high.days} day\\(s\\)`),
    );
    assert.match(thin[1]!.historicalEvidence.reason!, /need at least 30 outcomes on at least 20 distinct days/);
    // p 0.45 leans down: right when "up" did not happen, and the interval flips with it.
    const low = bins[4]!;
    assert.equal(thin[2]!.historicalAccuracySource, 'offline');
    assert.ok(Math.abs(thin[2]!.historicalAccuracy! - (1 - low.observedRate!)) < 1e-15);
    assert.ok(Math.abs(thin[2]!.historicalEvidence.low! - (1 - low.observedRateHigh!)) < 1e-15);

    const enough = (await new ExplanationService({ outcomes: source(25), logger: silent })
      .createLoaders()
      .explanation.loadMany(records)) as Explanation[];
    for (const e of enough) {
      assert.equal(e.historicalAccuracySource, 'history');
      assert.equal(e.historicalAccuracy, 0.75);
      assert.deepEqual(
        [e.historicalEvidence.rows, e.historicalEvidence.days, e.historicalEvidence.reason, e.historicalEvidence.level],
        [40, 25, null, 0.95],
      );
      assert.ok(e.historicalEvidence.low! < 0.75 && 0.75 < e.historicalEvidence.high!);
      // Never narrower than the binomial interval of 40 independent rows.
      assert.ok(e.historicalEvidence.high! - e.historicalEvidence.low! >= 2 * 1.959963984540054 * Math.sqrt((0.75 * 0.25) / 40) - 1e-12);
    }
  });
});
