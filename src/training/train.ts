import type { Bar } from '../infra/market-data/market-data.js';
import { MODEL_FAMILIES, type DriftReference, type FeatureStats, type OfflineMetrics, type PeriodCoverage } from '../domain/manifest.js';
import { driftReferenceOf } from '../domain/drift.js';
import { FEATURE_NAMES } from '../domain/features.js';
import type { StrategyDefinition } from '../domain/strategies.js';
import { applyPlatt, fitPlatt, type PlattCalibration } from './calibration.js';
import { BOOTSTRAP_BLOCK, BOOTSTRAP_METHOD, blockBootstrap, monthBlock } from '../domain/statistics.js';
import {
  INTERVAL_LEVELS,
  chooseIntervalShape,
  coverage,
  covered,
  fitConformal,
  type ConformalIntervals,
  type IntervalRows,
} from './conformal.js';
import { VOL20_SCALE, intervalScale } from '../domain/intervals.js';
import { buildSamples, selectPeriod, type Samples } from './dataset.js';
import { binaryMetrics, calibrationEvidence } from './evaluate.js';
import { featureStats } from './feature-stats.js';
import { fitLogistic, predictLogistic, type LogisticModel } from './logistic.js';
import { GBT_DEFAULTS, fitGbt, predictGbt, type GbtModel } from './gbt.js';

/**
 * Walk-forward training of a direction model:
 *   train       [start, validationFrom)        fit the model: the logistic regression (L2 picked on validation)
 *                                              or gradient-boosted trees (tree count early-stopped on validation)
 *   validation  [validationFrom, testFrom)      Platt calibration, signal thresholds, conformal quantiles
 *   test        [testFrom, end]                 held-out metrics written to the manifest, next to the base rate
 * Features at t use bars ≤ t; a sample whose label lies beyond its period's end is dropped (no leak).
 * There is no random step anywhere, so the same data always gives the same model.
 */
export interface TrainingPeriods {
  readonly validationFrom: Date;
  readonly testFrom: Date;
}

export const DEFAULT_PERIODS: TrainingPeriods = {
  validationFrom: new Date('2015-01-01T00:00:00Z'),
  testFrom: new Date('2018-01-01T00:00:00Z'),
};

/**
 * Rolling periods for retraining on data that keeps growing: the held-out (test) period is the last
 * `years` years up to `end`, validation the `years` years before it, training everything earlier. With
 * the fixed {@link DEFAULT_PERIODS}, new bars would only ever lengthen the held-out period and the model
 * would never learn from them. On the committed data (to 2021-04-21) three years give 2015-04-21 and
 * 2018-04-21, close to the defaults, so a scheduled version reads like the committed one.
 */
export function periodsEndingAt(end: Date, years = 3): TrainingPeriods {
  const back = (date: Date, n: number) => new Date(Date.UTC(date.getUTCFullYear() - n, date.getUTCMonth(), date.getUTCDate()));
  const testFrom = back(end, years);
  return { validationFrom: back(testFrom, years), testFrom };
}

const L2_GRID = [1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1];
const GBT_DEPTH_GRID = [2, 3, 4];

/** The model families `npm run train -- --family` fits; everything after the fit is shared. */
export { MODEL_FAMILIES };
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

export type TrainingResult = LogisticTrainingResult | GbtTrainingResult;
export type TrainingResultOf<F extends ModelFamily> = Extract<TrainingResult, { family: F }>;

export interface LogisticTrainingResult extends SharedResult {
  readonly family: 'logistic';
  readonly model: LogisticModel;
  readonly l2: number;
}

export interface GbtTrainingResult extends SharedResult {
  readonly family: 'gbt';
  readonly model: GbtModel;
}

interface SharedResult {
  readonly calibration: PlattCalibration;
  readonly signal: { buyAbove: number; sellBelow: number };
  readonly interval: ConformalIntervals;
  readonly offlineMetrics: OfflineMetrics;
  /** Of the training rows: the explanations' baseline (means) and typical ranges (quantiles). */
  readonly featureStats: FeatureStats;
  /** Of the training rows: what drift compares recent features and probabilities against. */
  readonly driftReference: DriftReference;
  readonly training: { train: PeriodInfo; validation: PeriodInfo };
  readonly samples: number;
}

interface PeriodInfo {
  from: string;
  to: string;
  samples: number;
}

export function trainDirectionModel<Family extends ModelFamily = 'logistic'>(
  bars: ReadonlyMap<string, readonly Bar[]>,
  strategy: StrategyDefinition,
  periods: TrainingPeriods = DEFAULT_PERIODS,
  onStep: (step: string) => void = () => undefined,
  options: { readonly replicates?: number; readonly family?: Family } = {},
): TrainingResultOf<Family> {
  onStep('building features and labels');
  const samples = buildSamples(bars, strategy.horizonBars);
  const start = new Date(extreme(samples.time, Math.min));
  const end = new Date(extreme(samples.labelTime, Math.max) + 1);
  const train = selectPeriod(samples, start, periods.validationFrom);
  const validation = selectPeriod(samples, periods.validationFrom, periods.testFrom);
  const test = selectPeriod(samples, periods.testFrom, end);
  for (const [name, rows] of [
    ['training', train],
    ['validation', validation],
    ['test', test],
  ] as const) {
    if (rows.length < 100) throw new Error(`the ${name} period has ${rows.length} samples; need at least 100 (is the data long enough?)`);
  }

  const yValidation = pick(samples.y, validation);
  const fitted = fitFamily(options.family ?? 'logistic', samples, train, validation, yValidation, onStep);
  const predict = fitted.predict;

  onStep('calibrating on the validation period');
  const rawValidation = predict(validation);
  const calibration = fitPlatt(rawValidation, yValidation);
  const calibratedValidation = rawValidation.map((p) => applyPlatt(calibration, p));
  const signal = {
    buyAbove: Math.max(0.5, quantile(calibratedValidation, 0.75)),
    sellBelow: Math.min(0.5, quantile(calibratedValidation, 0.25)),
  };
  const center = mean(pick(samples.forwardReturn, train));
  onStep('choosing the interval scale on the training period, fitting its quantiles on the validation period');
  const shape = chooseIntervalShape(intervalRows(samples, train), center, strategy.horizonBars);
  const interval = fitConformal(
    center,
    shape.scale,
    intervalRows(samples, validation),
    strategy.horizonBars,
    INTERVAL_LEVELS,
    shape.lowerTailShare,
  );

  onStep(`evaluating on ${test.length} held-out samples (with a month-block bootstrap of every metric)`);
  const yTest = pick(samples.y, test);
  const rawTest = predict(test);
  const calibratedTest = rawTest.map((p) => applyPlatt(calibration, p));
  const metrics = binaryMetrics(calibratedTest, yTest);
  // The baseline gets the same information calibration had: the base rate of the validation period.
  // (Against the older training base rate, a recalibrated constant would already look skilful.)
  const trainingBaseRate = mean(yValidation);
  const baseline = binaryMetrics(new Float64Array(test.length).fill(trainingBaseRate), yTest);
  const eceBefore = binaryMetrics(rawTest, yTest).ece;
  const testRows = intervalRows(samples, test);
  const intervalCoverage: Record<string, number> = {};
  for (const level of INTERVAL_LEVELS) intervalCoverage[String(level)] = coverage(interval, level, testRows, strategy.horizonBars);
  const testTime = pick(samples.time, test);
  const covered95 = covered(interval, 0.95, testRows, strategy.horizonBars);
  const bootstrap = blockBootstrap(
    Array.from(test, (_, i) => ({
      block: monthBlock(testTime[i]!),
      p: calibratedTest[i]!,
      y: yTest[i]!,
      covered: covered95[i] === 1,
    })),
    trainingBaseRate,
    { replicates: options.replicates },
  );
  const offlineMetrics: OfflineMetrics = {
    period: { from: isoDate(periods.testFrom), to: isoDate(new Date(end.getTime() - 1)) },
    sampleSize: metrics.sampleSize,
    baseRate: metrics.baseRate,
    accuracy: metrics.accuracy,
    baselineAccuracy: baseline.accuracy,
    precision: metrics.precision,
    recall: metrics.recall,
    f1: metrics.f1,
    brier: metrics.brier,
    baselineBrier: baseline.brier,
    logLoss: metrics.logLoss,
    baselineLogLoss: baseline.logLoss,
    ece: metrics.ece,
    eceBeforeCalibration: eceBefore,
    intervalCoverage,
    intervalCoverageByYear: coverageByPeriod(testTime, covered95, 4),
    intervalCoverageByMonth: coverageByPeriod(testTime, covered95, 7),
    intervalWidth: {
      level: 0.95,
      mean: meanWidth(interval, testRows, strategy.horizonBars),
      splitConformalMean: meanWidth(
        { ...fitConformal(center, VOL20_SCALE, intervalRows(samples, validation), strategy.horizonBars), scale: VOL20_SCALE },
        testRows,
        strategy.horizonBars,
      ),
    },
    calibration: calibrationEvidence(metrics.calibration, calibratedTest, yTest, testTime),
    verdict: verdict(metrics.brier, baseline.brier, metrics.accuracy, baseline.accuracy),
    trainingBaseRate,
    estimates: bootstrap.estimates,
    estimation: {
      method: BOOTSTRAP_METHOD,
      block: BOOTSTRAP_BLOCK,
      blocks: bootstrap.blocks,
      replicates: bootstrap.replicates,
      seed: bootstrap.seed,
      level: bootstrap.level,
      verdict: bootstrap.verdict,
    },
  };
  const trainInfo = periodInfo(samples, train);
  const calibratedTrain = predict(train).map((p) => applyPlatt(calibration, p));
  return {
    ...fitted.result,
    calibration,
    signal,
    interval,
    offlineMetrics,
    featureStats: featureStats(samples.x, train, FEATURE_NAMES, { from: trainInfo.from, to: trainInfo.to }),
    driftReference: driftReferenceOf(samples.x, train, FEATURE_NAMES, calibratedTrain, { from: trainInfo.from, to: trainInfo.to }),
    training: {
      train: trainInfo,
      validation: periodInfo(samples, validation),
    },
    samples: samples.length,
  } as TrainingResultOf<Family>;
}

type Fitted = {
  readonly predict: (rows: Uint32Array) => Float64Array;
  readonly result: Pick<LogisticTrainingResult, 'family' | 'model' | 'l2'> | Pick<GbtTrainingResult, 'family' | 'model'>;
};

function fitFamily(
  family: ModelFamily,
  samples: Samples,
  train: Uint32Array,
  validation: Uint32Array,
  yValidation: Float64Array,
  onStep: (step: string) => void,
): Fitted {
  const F = samples.featureCount;
  if (family === 'gbt') {
    const o = GBT_DEFAULTS;
    onStep(
      `fitting gradient-boosted trees on ${train.length} samples (depth grid ${GBT_DEPTH_GRID.join(', ')}, learning rate ${o.learningRate}, ≥ ${o.minSamplesLeaf} rows a leaf, ≤ ${o.maxTrees} trees, early stopping on the validation log loss)`,
    );
    // Depth picked on the validation log loss, as the logistic model's L2 is (ties keep the shallower).
    let best: { model: GbtModel; logLoss: number } | undefined;
    for (const maxDepth of GBT_DEPTH_GRID) {
      const model = fitGbt(samples.x, samples.y, train, validation, F, { maxDepth });
      const logLoss = model.validationLogLoss[model.trees.length]!;
      if (!best || logLoss < best.logLoss) best = { model, logLoss };
    }
    const { model } = best!;
    return { predict: (rows) => predictGbt(model, samples.x, rows, F), result: { family, model } };
  }
  onStep(`fitting logistic regression on ${train.length} samples (L2 grid ${L2_GRID.join(', ')})`);
  let best: { model: LogisticModel; l2: number; logLoss: number } | undefined;
  for (const l2 of L2_GRID) {
    const model = fitLogistic(samples.x, samples.y, train, F, { l2 });
    const { logLoss } = binaryMetrics(predictLogistic(model, samples.x, validation, F), yValidation);
    if (!best || logLoss < best.logLoss) best = { model, l2, logLoss };
  }
  const { model, l2 } = best!;
  return { predict: (rows) => predictLogistic(model, samples.x, rows, F), result: { family, model, l2 } };
}

/** Says plainly whether the model beat always predicting the validation base rate on held-out data. */
function verdict(brier: number, baselineBrier: number, accuracy: number, baselineAccuracy: number): string {
  const skill = 1 - brier / baselineBrier;
  const skillText = `Brier skill vs the base rate ${(skill * 100).toFixed(2)}%, accuracy ${(accuracy * 100).toFixed(2)}% vs ${(baselineAccuracy * 100).toFixed(2)}%`;
  if (skill > 0.001) return `better than the base rate on held-out data (${skillText})`;
  if (skill > -0.001) return `no better than the base rate on held-out data (${skillText})`;
  return `worse than the base rate on held-out data (${skillText})`;
}

function intervalRows(samples: Samples, rows: Uint32Array): IntervalRows {
  const F = samples.featureCount;
  const x = new Float64Array(rows.length * F);
  rows.forEach((r, i) => x.set(samples.x.subarray(r * F, (r + 1) * F), i * F));
  return { x, featureCount: F, forwardReturn: pick(samples.forwardReturn, rows), time: pick(samples.time, rows) };
}

/** Coverage per UTC calendar period of asOf: the first `chars` of the ISO date (4 = year, 7 = month). */
function coverageByPeriod(time: Float64Array, inside: Uint8Array, chars: 4 | 7): PeriodCoverage[] {
  const groups = new Map<string, [number, number]>();
  time.forEach((t, i) => {
    const key = new Date(t).toISOString().slice(0, chars);
    const entry = groups.get(key) ?? [0, 0];
    entry[0] += inside[i]!;
    entry[1] += 1;
    groups.set(key, entry);
  });
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([period, [hit, n]]) => ({ period, coverage: hit / n, samples: n }));
}

/** Mean of (high − low) / close of the 95% interval over the rows. */
function meanWidth(
  intervals: Pick<ConformalIntervals, 'center' | 'quantiles' | 'lowerQuantiles' | 'scale'>,
  rows: IntervalRows,
  horizonBars: number,
): number {
  const qHigh = intervals.quantiles['0.95']!;
  const qLow = intervals.lowerQuantiles?.['0.95'] ?? qHigh;
  const F = rows.featureCount;
  let sum = 0;
  for (let i = 0; i < rows.forwardReturn.length; i++) {
    const unit = intervalScale(intervals.scale, rows.x.subarray(i * F, (i + 1) * F)) * Math.sqrt(horizonBars);
    sum += Math.exp(intervals.center + qHigh * unit) - Math.exp(intervals.center - qLow * unit);
  }
  return sum / rows.forwardReturn.length;
}

function periodInfo(samples: Samples, rows: Uint32Array): PeriodInfo {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows) {
    lo = Math.min(lo, samples.time[r]!);
    hi = Math.max(hi, samples.time[r]!);
  }
  return { from: isoDate(new Date(lo)), to: isoDate(new Date(hi)), samples: rows.length };
}

function pick<T extends Float64Array | Uint8Array>(values: T, rows: Uint32Array): Float64Array {
  return Float64Array.from(rows, (r) => values[r]!);
}

/** Math.min/max over a typed array without spreading it (300k arguments overflow the stack). */
function extreme(values: Float64Array, pickOne: (a: number, b: number) => number): number {
  let result = values[0]!;
  for (let i = 1; i < values.length; i++) result = pickOne(result, values[i]!);
  return result;
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

function quantile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const isoDate = (d: Date) => d.toISOString().slice(0, 10);
