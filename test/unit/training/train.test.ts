import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { manifestSchema } from '../../../src/domain/manifest.js';
import { FEATURE_NAMES, FEATURE_WINDOW, computeFeatures } from '../../../src/domain/features.js';
import { findStrategy, type StrategyDefinition } from '../../../src/domain/strategies.js';
import { applyPlatt, fitPlatt } from '../../../src/training/calibration.js';
import { INTERVAL_LEVELS, chooseIntervalShape, fitConformal, type IntervalRows } from '../../../src/training/conformal.js';
import { intervalScale } from '../../../src/domain/intervals.js';
import { buildSamples, isSuspectBar, selectPeriod, type Samples } from '../../../src/training/dataset.js';
import { blockBootstrap } from '../../../src/domain/statistics.js';
import { binaryMetrics } from '../../../src/training/evaluate.js';
import { fitLogistic, predictLogistic } from '../../../src/training/logistic.js';
import { buildManifest, exportModel } from '../../../src/training/package.js';
import {
  trainDirectionModel,
  type LogisticTrainingResult,
  type TrainingPeriods,
  type TrainingResult,
} from '../../../src/training/train.js';

const DAY = 86_400_000;
const F = FEATURE_NAMES.length;
const START = new Date('2024-01-01T00:00:00Z');

async function syntheticBars(symbols: string[], historyBars: number, seed: number): Promise<Map<string, Bar[]>> {
  const market = createSyntheticMarket({ symbols, seed, historyBars, startTime: START });
  return market.fetchBars(symbols, { lookback: historyBars });
}

const row = (samples: Samples, i: number) => samples.x.subarray(i * F, (i + 1) * F);

/** Index in `bars` of each sample's asOf bar, checking the sample belongs to that symbol. */
function barIndex(samples: Samples, i: number, barsBySymbol: ReadonlyMap<string, readonly Bar[]>): { bars: readonly Bar[]; t: number } {
  const bars = barsBySymbol.get(samples.symbols[samples.symbolIndex[i]!]!)!;
  const t = bars.findIndex((b) => b.time.getTime() === samples.time[i]);
  assert.ok(t >= 0, `sample ${i}: no bar at ${new Date(samples.time[i]!).toISOString()}`);
  return { bars, t };
}

describe('buildSamples', () => {
  let bars: Map<string, Bar[]>;
  before(async () => {
    // Insertion order is not sorted on purpose: symbols must come out sorted.
    bars = await syntheticBars(['CCC', 'AAA', 'BBB'], 400, 3);
  });

  for (const horizon of [1, 5]) {
    test(`horizon ${horizon}: one sample per bar t ∈ [${FEATURE_WINDOW - 1}, n − ${horizon}), label = sign of the forward adjusted-close return, features = computeFeatures(bars ≤ t)`, () => {
      const samples = buildSamples(bars, horizon);
      assert.deepEqual(samples.symbols, ['AAA', 'BBB', 'CCC']);
      assert.equal(samples.featureCount, F);
      const perSymbol = 400 - FEATURE_WINDOW - horizon + 1;
      assert.equal(samples.length, 3 * perSymbol);
      for (const array of [samples.y, samples.forwardReturn, samples.vol, samples.time, samples.labelTime, samples.symbolIndex])
        assert.equal(array.length, samples.length);
      assert.equal(samples.x.length, samples.length * F);

      let ups = 0;
      for (let i = 0; i < samples.length; i++) {
        const s = Math.floor(i / perSymbol);
        assert.equal(samples.symbolIndex[i], s);
        const { bars: list, t } = barIndex(samples, i, bars);
        assert.equal(t, FEATURE_WINDOW - 1 + (i % perSymbol), 'samples are in time order, one per bar');
        const labelBar = list[t + horizon]!;
        assert.equal(samples.labelTime[i], labelBar.time.getTime());
        assert.equal(samples.forwardReturn[i], Math.log(labelBar.adjClose / list[t]!.adjClose));
        assert.equal(samples.y[i], labelBar.adjClose > list[t]!.adjClose ? 1 : 0);
        ups += samples.y[i]!;
        const expected = computeFeatures(list.slice(0, t + 1)).values;
        assert.deepEqual(Array.from(row(samples, i)), Array.from(expected), `features of sample ${i}`);
        assert.equal(samples.vol[i], expected[FEATURE_NAMES.indexOf('vol_20d')]);
      }
      // Both classes occur (the checks above are not vacuous).
      assert.ok(ups > samples.length * 0.3 && ups < samples.length * 0.7, `ups ${ups}`);
    });
  }

  test('an unchanged adjusted close is a 0 label (strictly higher means up)', () => {
    const list = bars.get('AAA')!.map((b) => ({ ...b }));
    list[201] = { ...list[201]!, adjClose: list[200]!.adjClose };
    const samples = buildSamples(new Map([['AAA', list]]), 1);
    const i = samples.time.indexOf(list[200]!.time.getTime());
    assert.equal(samples.forwardReturn[i], 0);
    assert.equal(samples.y[i], 0);
  });

  test('no look-ahead: changing or removing bars after t + horizon leaves sample t unchanged', () => {
    const h = 5;
    const cut = 250;
    const original = bars.get('BBB')!;
    const perturbed = original.map((b, i) =>
      i >= cut
        ? {
            ...b,
            open: b.open * 1.7,
            high: b.high * 1.9,
            low: b.low * 1.5,
            close: b.close * 1.7,
            adjClose: b.adjClose * 1.7,
            volume: b.volume * 3,
          }
        : b,
    );
    const a = buildSamples(new Map([['BBB', original]]), h);
    const b = buildSamples(new Map([['BBB', perturbed]]), h);
    const truncated = buildSamples(new Map([['BBB', original.slice(0, cut)]]), h);
    assert.equal(a.length, b.length);
    const unaffected = cut - h - (FEATURE_WINDOW - 1); // samples with t + h < cut
    assert.equal(truncated.length, unaffected);
    for (let i = 0; i < unaffected; i++) {
      assert.ok(a.labelTime[i]! < original[cut]!.time.getTime());
      for (const s of [b, truncated]) {
        assert.deepEqual(Array.from(row(s, i)), Array.from(row(a, i)), `features ${i}`);
        assert.equal(s.y[i], a.y[i]);
        assert.equal(s.forwardReturn[i], a.forwardReturn[i]);
        assert.equal(s.vol[i], a.vol[i]);
        assert.equal(s.time[i], a.time[i]);
        assert.equal(s.labelTime[i], a.labelTime[i]);
      }
    }
    // The perturbation is visible from the first sample whose label bar is at or after the cut.
    assert.ok(Math.abs(b.forwardReturn[unaffected]! - a.forwardReturn[unaffected]! - Math.log(1.7)) < 1e-9);
  });

  test('suspect bars (flat OHLC, zero volume) drop the samples whose asOf or label bar they are, but stay in history', () => {
    const h = 5;
    const flat = 150;
    const noVolume = 220;
    const list: Bar[] = bars.get('CCC')!.map((b) => ({ ...b }));
    const c = list[flat]!.close;
    list[flat] = { ...list[flat]!, open: c, high: c, low: c, close: c };
    list[noVolume] = { ...list[noVolume]!, volume: 0 };
    assert.ok(isSuspectBar(list[flat]!) && isSuspectBar(list[noVolume]!));
    assert.ok(!list.some((b, i) => i !== flat && i !== noVolume && isSuspectBar(b)));

    const samples = buildSamples(new Map([['CCC', list]]), h);
    const dropped = new Set([flat, flat - h, noVolume, noVolume - h].map((i) => list[i]!.time.getTime()));
    const expected = list
      .map((b, t) => ({ b, t }))
      .filter(({ t }) => t >= FEATURE_WINDOW - 1 && t + h < list.length)
      .map(({ b }) => b.time.getTime())
      .filter((time) => !dropped.has(time));
    assert.deepEqual(Array.from(samples.time), expected);
    assert.equal(samples.length, 400 - FEATURE_WINDOW - h + 1 - 4);
    // The suspect bars are still history: features next to them are computed over windows containing them.
    for (const t of [flat + 1, noVolume + 1, noVolume + 50]) {
      const i = samples.time.indexOf(list[t]!.time.getTime());
      assert.ok(i >= 0);
      assert.deepEqual(Array.from(row(samples, i)), Array.from(computeFeatures(list.slice(0, t + 1)).values));
    }
    const i = samples.time.indexOf(list[noVolume + 1]!.time.getTime());
    assert.equal(row(samples, i)[FEATURE_NAMES.indexOf('ret_1d')], Math.log(list[noVolume + 1]!.adjClose / list[noVolume]!.adjClose));
  });

  test('isSuspectBar', () => {
    const good = bars.get('AAA')![120]!;
    assert.equal(isSuspectBar(good), false);
    assert.equal(isSuspectBar({ ...good, open: 10, high: 10, low: 10, close: 10 }), true);
    assert.equal(isSuspectBar({ ...good, open: 10, high: 10, low: 10, close: 10.01 }), false, 'only fully flat bars');
    assert.equal(isSuspectBar({ ...good, volume: 0 }), true);
    assert.equal(isSuspectBar({ ...good, volume: -5 }), true);
  });
});

describe('selectPeriod', () => {
  test('hand example: asOf ≥ from and label < to (a label at or past the end is purged)', () => {
    const d = (n: number) => Date.UTC(2020, 0, 1) + n * DAY;
    const times = [0, 1, 2, 3, 4, 5];
    const labels = [2, 3, 4, 5, 6, 7];
    const samples = {
      featureCount: 1,
      x: new Float64Array(6),
      y: new Uint8Array(6),
      forwardReturn: new Float64Array(6),
      vol: new Float64Array(6),
      time: Float64Array.from(times, d),
      labelTime: Float64Array.from(labels, d),
      symbolIndex: new Uint16Array(6),
      symbols: ['X'],
      length: 6,
    } satisfies Samples;
    assert.deepEqual(Array.from(selectPeriod(samples, new Date(d(1)), new Date(d(5)))), [1, 2]); // labels 3, 4 < 5; sample 3's label is 5
    assert.deepEqual(Array.from(selectPeriod(samples, new Date(d(1)), new Date(d(5) + 1))), [1, 2, 3]);
    assert.deepEqual(Array.from(selectPeriod(samples, new Date(d(0)), new Date(d(100)))), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(Array.from(selectPeriod(samples, new Date(d(4)), new Date(d(6)))), []);
    assert.deepEqual(Array.from(selectPeriod(samples, new Date(d(4) + 1), new Date(d(100)))), [5]);
  });

  test('on a synthetic market with horizon 5: exactly the last 5 asOf days of a period are purged, per symbol', async () => {
    const bars = await syntheticBars(['AAA', 'BBB'], 600, 9);
    const samples = buildSamples(bars, 5);
    const from = new Date('2022-10-01T00:00:00Z');
    const to = new Date('2023-03-01T00:00:00Z');
    const picked = new Set(selectPeriod(samples, from, to));
    let inPeriod = 0;
    for (let i = 0; i < samples.length; i++) {
      const asOfIn = samples.time[i]! >= from.getTime() && samples.time[i]! < to.getTime();
      if (asOfIn) inPeriod++;
      assert.equal(picked.has(i), asOfIn && samples.labelTime[i]! < to.getTime(), `sample ${i}`);
    }
    assert.equal(picked.size, inPeriod - 2 * 5);
    const lastPicked = Math.max(...[...picked].map((i) => samples.time[i]!));
    assert.equal(lastPicked, to.getTime() - 6 * DAY);
  });
});

describe('trainDirectionModel', () => {
  const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE'];
  // 3000 daily bars ending 2023-12-31 start 2015-10-15; samples start 2016-01-22.
  const PERIODS: TrainingPeriods = { validationFrom: new Date('2020-01-01T00:00:00Z'), testFrom: new Date('2022-01-01T00:00:00Z') };
  const L2_GRID = [1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1];
  let bars: Map<string, Bar[]>;
  const results = new Map<string, LogisticTrainingResult>();
  const steps: string[] = [];
  const sessions: ort.InferenceSession[] = [];

  before(async () => {
    bars = await syntheticBars(SYMBOLS, 3000, 42);
    for (const name of ['direction-1d', 'direction-5d']) {
      results.set(
        name,
        trainDirectionModel(bars, findStrategy(name)!, PERIODS, (step) => steps.push(`${name}: ${step}`)),
      );
    }
  });
  after(async () => {
    for (const s of sessions) await s.release();
  });

  const exportOnnx = (result: TrainingResult) => exportModel(result, { strategy: 'x', version: 'vtest' });
  const manifestOf = (strategy: StrategyDefinition, result: TrainingResult, onnx: Uint8Array) =>
    buildManifest({ strategy, version: 'vtest', createdAt: new Date('2024-01-02T03:04:05.678Z'), result, onnx, bars, source: 'synthetic' });

  for (const name of ['direction-1d', 'direction-5d']) {
    test(`${name}: the result builds a manifest that manifestSchema accepts, with sane signal and intervals`, () => {
      const strategy = findStrategy(name)!;
      const result = results.get(name)!;
      const parsed = manifestSchema.safeParse(manifestOf(strategy, result, exportOnnx(result)));
      assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));

      const { signal, interval, offlineMetrics: m } = result;
      assert.ok(signal.sellBelow <= 0.5 && 0.5 <= signal.buyAbove, JSON.stringify(signal));
      assert.ok(signal.sellBelow > 0.3 && signal.buyAbove < 0.7, `a model of noise should not lean far: ${JSON.stringify(signal)}`);
      assert.deepEqual(Object.keys(m.intervalCoverage).sort(), INTERVAL_LEVELS.map(String).sort());
      for (const level of INTERVAL_LEVELS) {
        const c = m.intervalCoverage[String(level)]!;
        assert.ok(c > 0 && c <= 1, `coverage ${level}: ${c}`);
        // GARCH returns scaled by their own 20-bar volatility are nearly exchangeable: coverage is close to nominal.
        assert.ok(Math.abs(c - level) < 0.03, `coverage ${level}: ${c}`);
      }
      const q = INTERVAL_LEVELS.map((l) => interval.quantiles[String(l)]!);
      for (let k = 1; k < q.length; k++) assert.ok(q[k]! > q[k - 1]!, `quantiles increase with the level: ${q}`);
      assert.ok(L2_GRID.includes(result.l2), `l2 ${result.l2}`);
      assert.equal(result.model.weights.length, F);
      assert.ok(result.model.iterations >= 1 && result.model.iterations < 50);
      assert.equal(m.period.from, '2022-01-01');
      assert.equal(m.period.to, '2023-12-31');
      assert.match(m.verdict, /(better|no better|worse) than the base rate on held-out data \(Brier skill vs the base rate -?\d+\.\d\d%/);

      // The drift reference: 20 equal-frequency bins of every feature over the training rows (each
      // holds ≈ 5% of them), and of the calibrated probabilities of those rows.
      const reference = result.driftReference;
      assert.deepEqual(reference.period, result.featureStats.period);
      assert.equal(reference.samples, result.training.train.samples);
      assert.deepEqual(Object.keys(reference.features), [...FEATURE_NAMES]);
      for (const [feature, h] of Object.entries(reference.features)) {
        if (feature === 'range_pos_20') continue; // mass points at 0 and 1 merge bins
        assert.equal(h.proportions.length, 20, feature);
        for (const p of h.proportions) assert.ok(Math.abs(p - 0.05) < 0.005, `${feature}: ${h.proportions.join(', ')}`);
      }
      assert.ok(reference.probability.proportions.length >= 10);
      assert.ok(reference.probability.edges.every((e) => e > 0 && e < 1));
    });

    test(`${name}: every reported number is what the walk-forward recipe gives on the purged periods`, () => {
      const strategy = findStrategy(name)!;
      const h = strategy.horizonBars;
      const result = results.get(name)!;
      const samples = buildSamples(bars, h);
      assert.equal(result.samples, samples.length);
      const start = new Date(Math.min(...samples.time));
      const end = new Date(Math.max(...samples.labelTime) + 1);
      const train = selectPeriod(samples, start, PERIODS.validationFrom);
      const validation = selectPeriod(samples, PERIODS.validationFrom, PERIODS.testFrom);
      const test = selectPeriod(samples, PERIODS.testFrom, end);
      // Purging: 5 symbols lose their last h asOf days before each boundary.
      assert.equal(train.length + validation.length + test.length, samples.length - 2 * SYMBOLS.length * h);
      assert.equal(result.training.train.samples, train.length);
      assert.equal(result.training.validation.samples, validation.length);
      assert.equal(result.offlineMetrics.sampleSize, test.length);
      assert.equal(result.training.train.from, '2016-01-22');
      assert.equal(result.training.train.to, new Date(PERIODS.validationFrom.getTime() - (h + 1) * DAY).toISOString().slice(0, 10));
      assert.equal(result.training.validation.from, '2020-01-01');
      assert.equal(result.training.validation.to, new Date(PERIODS.testFrom.getTime() - (h + 1) * DAY).toISOString().slice(0, 10));

      const pick = (values: ArrayLike<number>, rows: Uint32Array) => Float64Array.from(rows, (r) => values[r]!);
      // L2: the grid value with the lowest validation log loss.
      const yValidation = pick(samples.y, validation);
      const losses = L2_GRID.map(
        (l2) =>
          binaryMetrics(predictLogistic(fitLogistic(samples.x, samples.y, train, F, { l2 }), samples.x, validation, F), yValidation)
            .logLoss,
      );
      assert.equal(result.l2, L2_GRID[losses.indexOf(Math.min(...losses))]);
      const model = fitLogistic(samples.x, samples.y, train, F, { l2: result.l2 });
      assert.deepEqual(result.model, model);
      // Platt on validation; signal thresholds from its quartiles.
      const raw = predictLogistic(model, samples.x, validation, F);
      assert.deepEqual(result.calibration, fitPlatt(raw, yValidation));
      const calibrated = Float64Array.from(raw, (p) => applyPlatt(result.calibration, p)).sort();
      const quartile = (qq: number) => calibrated[Math.min(calibrated.length - 1, Math.floor(qq * calibrated.length))]!;
      assert.deepEqual(result.signal, { buyAbove: Math.max(0.5, quartile(0.75)), sellBelow: Math.min(0.5, quartile(0.25)) });
      // Conformal: centered on the training mean return, fitted on validation.
      const trainReturns = pick(samples.forwardReturn, train);
      const center = trainReturns.reduce((s, v) => s + v, 0) / trainReturns.length;
      // Conformal: the scale chosen on the training rows, the quantiles fitted on validation.
      const rowsOf = (rows: Uint32Array): IntervalRows => ({
        x: Float64Array.from({ length: rows.length * F }, (_, k) => samples.x[rows[Math.floor(k / F)]! * F + (k % F)]!),
        featureCount: F,
        forwardReturn: pick(samples.forwardReturn, rows),
        time: pick(samples.time, rows),
      });
      const shape = chooseIntervalShape(rowsOf(train), center, h);
      assert.deepEqual(result.interval, fitConformal(center, shape.scale, rowsOf(validation), h, INTERVAL_LEVELS, shape.lowerTailShare));
      assert.ok(result.interval.lowerQuantiles && result.interval.lowerTailShare === shape.lowerTailShare);
      // Held-out metrics are computed on the test period with the calibrated model.
      const yTest = pick(samples.y, test);
      const rawTest = predictLogistic(model, samples.x, test, F);
      const metrics = binaryMetrics(
        rawTest.map((p) => applyPlatt(result.calibration, p)),
        yTest,
      );
      const baseline = binaryMetrics(
        new Float64Array(test.length).fill(yValidation.reduce((s, v) => s + v, 0) / yValidation.length),
        yTest,
      );
      const m = result.offlineMetrics;
      assert.equal(m.baseRate, yTest.reduce((s, v) => s + v, 0) / yTest.length);
      assert.deepEqual(
        [
          m.accuracy,
          m.precision,
          m.recall,
          m.f1,
          m.brier,
          m.logLoss,
          m.ece,
          m.calibration.map(({ lower, upper, count, meanPredicted, observedRate }) => ({
            lower,
            upper,
            count,
            meanPredicted,
            observedRate,
          })),
        ],
        [metrics.accuracy, metrics.precision, metrics.recall, metrics.f1, metrics.brier, metrics.logLoss, metrics.ece, metrics.calibration],
      );
      // Each bin says how many distinct days stand behind it, and its interval holds its rate.
      const calibratedTest = rawTest.map((p) => applyPlatt(result.calibration, p));
      const testTime = pick(samples.time, test);
      m.calibration.forEach((bin, b) => {
        const days = new Set<string>();
        calibratedTest.forEach((p, i) => {
          if (Math.min(9, Math.floor(p * 10)) === b) days.add(new Date(testTime[i]!).toISOString().slice(0, 10));
        });
        assert.equal(bin.days, days.size, `bin ${b} days`);
        if (bin.count > 0)
          assert.ok(bin.observedRateLow! <= bin.observedRate! && bin.observedRate! <= bin.observedRateHigh!, `bin ${b} interval`);
      });
      // Estimates: the block bootstrap of the held-out rows by calendar month, against the validation base rate.
      const trainingBaseRate = yValidation.reduce((s, v) => s + v, 0) / yValidation.length;
      assert.equal(m.trainingBaseRate, trainingBaseRate);
      const q = result.interval.quantiles['0.95']!;
      const qLow = result.interval.lowerQuantiles!['0.95']!;
      const testReturn = pick(samples.forwardReturn, test);
      const scored = Array.from(test, (r, i) => {
        const unit = intervalScale(result.interval.scale, row(samples, r)) * Math.sqrt(h);
        const away = testReturn[i]! - result.interval.center;
        const month = new Date(testTime[i]!).toISOString().slice(0, 7);
        return {
          block: Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1,
          p: calibratedTest[i]!,
          y: yTest[i]!,
          covered: -qLow * unit <= away && away <= q * unit,
        };
      });
      // Coverage per calendar year and month: the same `covered` flags, grouped by asOf.
      const byPeriod = (chars: number) => {
        const groups = new Map<string, { hit: number; n: number }>();
        scored.forEach((r, i) => {
          const key = new Date(testTime[i]!).toISOString().slice(0, chars);
          const g = groups.get(key) ?? { hit: 0, n: 0 };
          g.hit += r.covered ? 1 : 0;
          g.n += 1;
          groups.set(key, g);
        });
        return [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([period, g]) => ({ period, coverage: g.hit / g.n, samples: g.n }));
      };
      assert.deepEqual(m.intervalCoverageByYear, byPeriod(4));
      assert.deepEqual(m.intervalCoverageByMonth, byPeriod(7));
      assert.equal(m.intervalCoverage['0.95'], scored.filter((r) => r.covered).length / scored.length);
      const months = new Set(scored.map((r) => r.block)).size;
      assert.deepEqual(m.estimation, { ...m.estimation, block: 'MONTH', blocks: months, replicates: 1000, level: 0.95 });
      const want = blockBootstrap(scored, trainingBaseRate);
      assert.deepEqual(m.estimates, want.estimates);
      assert.equal(m.estimation!.verdict, want.verdict);
      for (const e of m.estimates!) assert.ok(e.low <= e.value && e.value <= e.high, e.metric);
      assert.equal(m.estimates!.find((e) => e.metric === 'accuracy')!.value, m.accuracy);
      assert.deepEqual([m.baselineAccuracy, m.baselineBrier, m.baselineLogLoss], [baseline.accuracy, baseline.brier, baseline.logLoss]);
      assert.equal(m.eceBeforeCalibration, binaryMetrics(rawTest, yTest).ece);
    });

    test(`${name}: deterministic (a second run gives identical numbers)`, () => {
      const again = trainDirectionModel(bars, findStrategy(name)!, PERIODS);
      assert.deepEqual(again, results.get(name));
    });

    test(`${name}: the exported ONNX gives predictLogistic's probabilities within 1e-5`, async () => {
      const result = results.get(name)!;
      const session = await ort.InferenceSession.create(exportOnnx(result));
      sessions.push(session);
      const samples = buildSamples(bars, findStrategy(name)!.horizonBars);
      const rows = Uint32Array.from({ length: 2000 }, (_, i) => (i * 7) % samples.length);
      const input = new Float32Array(rows.length * F);
      rows.forEach((r, i) => input.set(row(samples, r), i * F));
      const output = await session.run({ features: new ort.Tensor('float32', input, [rows.length, F]) });
      const onnx = output.probability!.data as Float32Array;
      const expected = predictLogistic(result.model, samples.x, rows, F);
      assert.equal(onnx.length, rows.length);
      let worst = 0;
      for (let i = 0; i < rows.length; i++) worst = Math.max(worst, Math.abs(onnx[i]! - expected[i]!));
      assert.ok(worst < 1e-5, `max |onnx − predictLogistic| = ${worst}`);
      // The model is not a constant (the comparison above is not vacuous).
      assert.ok(Math.max(...expected) - Math.min(...expected) > 0.01);
    });
  }

  test('reports its steps, in order', () => {
    const mine = steps.filter((s) => s.startsWith('direction-5d: ')).map((s) => s.slice('direction-5d: '.length));
    assert.equal(mine.length, 5);
    assert.equal(mine[0], 'building features and labels');
    assert.match(mine[1]!, /^fitting logistic regression on \d+ samples \(L2 grid 0\.0001, 0\.001, 0\.01, 0\.03, 0\.1, 0\.3, 1\)$/);
    assert.equal(mine[2], 'calibrating on the validation period');
    assert.equal(mine[3], 'choosing the interval scale on the training period, fitting its quantiles on the validation period');
    assert.match(mine[4]!, /^evaluating on \d+ held-out samples \(with a month-block bootstrap of every metric\)$/);
  });

  test('a period with fewer than 100 samples is refused with its count', () => {
    assert.throws(
      () =>
        trainDirectionModel(bars, findStrategy('direction-1d')!, {
          validationFrom: PERIODS.validationFrom,
          testFrom: new Date('2030-01-01T00:00:00Z'),
        }),
      { message: 'the test period has 0 samples; need at least 100 (is the data long enough?)' },
    );
    assert.throws(
      () =>
        trainDirectionModel(bars, findStrategy('direction-1d')!, {
          validationFrom: new Date('2016-01-01T00:00:00Z'),
          testFrom: PERIODS.testFrom,
        }),
      { message: 'the training period has 0 samples; need at least 100 (is the data long enough?)' },
    );
  });
});
