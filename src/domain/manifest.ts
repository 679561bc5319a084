import { z } from 'zod';
import { STRATEGY_PATTERN, VERSION_PATTERN } from './names.js';

/**
 * `manifest.json` beside every `model.onnx`: everything the gateway needs to serve a model it knows
 * nothing else about (the gateway is model-agnostic: any ONNX model with a correct manifest serves), and
 * everything an analyst needs to judge it (offline metrics next to the base rate, provenance).
 */
const probability = z.number().min(0).max(1);

/**
 * Bounds on the numbers that shape what is served, so a manifest cannot make every prediction
 * degenerate or non-finite (calibration a=1e308, b=-1e308 passes a finite-number check yet serves
 * probability 0, SELL, for every input). Non-finite numbers cannot pass at all: JSON has no NaN, and
 * the 1e309 that JSON.parse reads as Infinity fails every z.number(). The committed models sit far
 * inside: a ≈ 0.74-1.11, b ≈ 0.02-0.09, center ≈ 3e-4-2e-3, quantiles 1.2-4.2.
 */
export const MANIFEST_BOUNDS = {
  /**
   * Platt slope, |a| ≤ 20: beyond, a · logit(p) (|logit| ≤ 27.6 after clamping) saturates the sigmoid
   * to exactly 0 or 1 for nearly every input. Not required positive: fitted on a model of noise, the
   * slope honestly comes out near 0 or below.
   */
  maxCalibrationA: 20,
  /** Platt intercept, |b| ≤ 20: e^20 odds before the model has said anything. */
  maxCalibrationB: 20,
  /** Interval centre, a log return over the horizon: |center| ≤ 1 (a 2.7× shift is no centre). */
  maxIntervalCenter: 1,
  /** Conformal quantiles, in multiples of volatility × √horizon: (0, 50]. */
  maxIntervalQuantile: 50,
  /** Horizon: at most a year of trading days. */
  maxHorizonBars: 260,
  /** Training statistics of a feature (mean, std, quantiles): |value| ≤ 1e6; the baseline input of explanations is made of them. */
  maxFeatureStat: 1e6,
} as const;
const featureStat = z.number().min(-MANIFEST_BOUNDS.maxFeatureStat).max(MANIFEST_BOUNDS.maxFeatureStat);
const nullableMetric = z.number().nullable();

const calibrationBin = z.object({
  lower: z.number(),
  upper: z.number(),
  count: z.number().int().nonnegative(),
  meanPredicted: nullableMetric,
  observedRate: nullableMetric,
  /** Distinct days (UTC, of asOf) behind the bin, and a day-clustered 95% interval of observedRate (written by training since issue 19). */
  days: z.number().int().nonnegative().optional(),
  observedRateLow: probability.optional(),
  observedRateHigh: probability.optional(),
});

/** A metric with its calendar-block bootstrap interval (src/domain/statistics.ts); low ≤ value ≤ high. */
const metricEstimate = z
  .object({ metric: z.string(), value: z.number(), low: z.number(), high: z.number(), level: probability, widened: z.boolean() })
  .refine((e) => e.low <= e.value && e.value <= e.high, { message: 'an estimate must contain its value (low ≤ value ≤ high)' });

/** Coverage of one calendar period ("2020" or "2020-03"): share of `samples` outcomes inside the interval. */
const periodCoverage = z.object({
  period: z.string().regex(/^\d{4}(-\d{2})?$/),
  coverage: probability,
  samples: z.number().int().positive(),
});

export const offlineMetricsSchema = z.object({
  period: z.object({ from: z.string(), to: z.string() }),
  sampleSize: z.number().int().positive(),
  baseRate: probability,
  accuracy: probability,
  baselineAccuracy: probability,
  precision: nullableMetric,
  recall: nullableMetric,
  f1: nullableMetric,
  brier: z.number(),
  baselineBrier: z.number(),
  logLoss: z.number(),
  baselineLogLoss: z.number(),
  ece: z.number(),
  eceBeforeCalibration: z.number(),
  intervalCoverage: z.record(z.string(), probability),
  /** Coverage of the 95% interval per UTC calendar year / month of asOf on the held-out period (since issue 19). */
  intervalCoverageByYear: z.array(periodCoverage).optional(),
  intervalCoverageByMonth: z.array(periodCoverage).optional(),
  /**
   * Mean width of the 95% interval on the held-out rows, as a share of the close (high − low) / close,
   * and the same for split-conformal on the 20-bar volatility calibrated on the same validation rows.
   */
  intervalWidth: z.object({ level: probability, mean: z.number().nonnegative(), splitConformalMean: z.number().nonnegative() }).optional(),
  calibration: z.array(calibrationBin),
  /** One honest sentence: does the model beat the base rate on held-out data? */
  verdict: z.string(),
  /** The up-rate the baseline predicts: the validation period's, the latest a model trained then could know. */
  trainingBaseRate: probability.optional(),
  estimates: z.array(metricEstimate).optional(),
  /** How `estimates` were made, and the verdict their Brier-skill interval gives. */
  estimation: z
    .object({
      method: z.string(),
      block: z.string(),
      blocks: z.number().int().nonnegative(),
      replicates: z.number().int().positive(),
      seed: z.number().int(),
      level: probability,
      verdict: z.enum(['BETTER_THAN_BASE_RATE', 'NO_BETTER_THAN_BASE_RATE', 'WORSE_THAN_BASE_RATE']).nullable(),
    })
    .optional(),
});

/**
 * Per-feature statistics of the rows a model was trained on. Optional (a model exported elsewhere may
 * not have them): explanations need them, as the baseline input attributions are measured from (the
 * training means) and the typical range descriptions place a value in (the quantiles). A manifest whose
 * statistics miss a feature still serves predictions; only its explanations are refused, saying why.
 */
export const FEATURE_STATS_QUANTILES = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99] as const;

export const featureStatsSchema = z.object({
  period: z.object({ from: z.string(), to: z.string() }),
  samples: z.number().int().positive(),
  features: z.record(
    z.string(),
    z.object({
      mean: featureStat,
      std: featureStat.nonnegative(),
      /** Level (as a string, e.g. "0.05") → value; at least the median. */
      quantiles: z.record(z.string(), featureStat).refine((q) => q['0.5'] !== undefined, { message: 'needs at least the median ("0.5")' }),
    }),
  ),
});

/**
 * A reference distribution for drift (src/domain/drift.ts): `k − 1` ascending cut points and the share
 * of reference rows in each of the `k` right-closed bins (summing to 1).
 */
export const referenceHistogramSchema = z
  .object({ edges: z.array(featureStat), proportions: z.array(probability) })
  .refine((h) => h.proportions.length === h.edges.length + 1, { message: 'needs one proportion more than edges' })
  .refine((h) => h.edges.every((e, i) => i === 0 || e > h.edges[i - 1]!), { message: 'edges must be strictly ascending' })
  .refine((h) => Math.abs(h.proportions.reduce((a, b) => a + b, 0) - 1) < 1e-6, { message: 'proportions must sum to 1' });

/**
 * What drift is measured against (written by training since issue 19; older manifests lack it and
 * drift falls back to their featureStats quantiles): equal-frequency histograms of every feature over
 * the training rows, and of the calibrated probability the model gives those rows.
 */
export const driftReferenceSchema = z.object({
  period: z.object({ from: z.string(), to: z.string() }),
  samples: z.number().int().positive(),
  bins: z.number().int().positive(),
  features: z.record(z.string(), referenceHistogramSchema),
  probability: referenceHistogramSchema,
});

const intervalCenter = z.number().min(-MANIFEST_BOUNDS.maxIntervalCenter).max(MANIFEST_BOUNDS.maxIntervalCenter);
const intervalQuantiles = z.record(z.string(), z.number().positive().max(MANIFEST_BOUNDS.maxIntervalQuantile));
const scaleWeight = z.number().min(0).max(1);

/**
 * How the price interval is made (src/domain/intervals.ts). `split-conformal` (older manifests) scales
 * by the 20-bar volatility; `volatility-normalised-conformal` by a weighted geometric mean of three
 * volatility estimates whose weights sum to 1, so the scale stays a volatility.
 */
export const intervalSchema = z
  .discriminatedUnion('method', [
    z.object({ method: z.literal('split-conformal'), center: intervalCenter, quantiles: intervalQuantiles }),
    z.object({
      method: z.literal('volatility-normalised-conformal'),
      center: intervalCenter,
      /** q⁺ per level: the upper bound is close · e^(center + q⁺ · scale · √h); also q⁻ when lowerQuantiles is absent. */
      quantiles: intervalQuantiles,
      /** q⁻ per level (same levels as quantiles), since the 5-day criterion of issue 19: the lower bound is close · e^(center − q⁻ · scale · √h). */
      lowerQuantiles: intervalQuantiles.optional(),
      /** The share of 1 − level left below the interval (0.5 = equal tails), chosen on the training period. */
      lowerTailShare: z.number().gt(0).lt(1).optional(),
      scale: z.object({
        weights: z
          .object({ vol_20d: scaleWeight, vol_5d: scaleWeight, hl_range: scaleWeight })
          .partial()
          .strict()
          .refine((w) => Math.abs(Object.values(w).reduce((a, b) => a + b, 0) - 1) <= 1e-9, { message: 'scale weights must sum to 1' }),
        /** Each volatility estimate is floored here before the logarithm: (0, 0.01]. */
        floor: z.number().positive().max(0.01),
      }),
    }),
  ])
  .refine(
    (interval) =>
      interval.method === 'split-conformal' ||
      !interval.lowerQuantiles ||
      Object.keys(interval.lowerQuantiles).sort().join() === Object.keys(interval.quantiles).sort().join(),
    { message: 'lowerQuantiles must calibrate the same levels as quantiles' },
  );

/**
 * The model families training writes (issue 22). Serving does not depend on it (any ONNX model with
 * the manifest's I/O serves); it says what produced the file. Absent means 'logistic', the only family
 * before, so older manifests (and the committed ones, which training regenerates byte for byte) stay as
 * they are.
 */
export const MODEL_FAMILIES = ['logistic', 'gbt'] as const;

export const manifestSchema = z.object({
  strategy: z.string().regex(STRATEGY_PATTERN),
  version: z.string().regex(VERSION_PATTERN),
  horizon: z.string(),
  horizonBars: z.number().int().positive().max(MANIFEST_BOUNDS.maxHorizonBars),
  createdAt: z.string().datetime(),
  description: z.string(),
  modelType: z.string(),
  family: z.enum(MODEL_FAMILIES).optional(),
  featureSet: z.string(),
  features: z.array(z.string()).min(1),
  input: z.object({ name: z.string(), featureCount: z.number().int().positive() }),
  output: z.object({
    name: z.string(),
    /** For an [N, k] output (e.g. scikit-learn's class probabilities), the column of P(event); default the last. */
    probabilityIndex: z.number().int().nonnegative().optional(),
  }),
  signal: z.object({ buyAbove: probability, sellBelow: probability }).refine((s) => s.sellBelow <= 0.5 && s.buyAbove >= 0.5, {
    message: 'need sellBelow ≤ 0.5 ≤ buyAbove, so a signal is never less likely right than wrong',
  }),
  calibration: z.object({
    method: z.literal('platt'),
    a: z.number().min(-MANIFEST_BOUNDS.maxCalibrationA).max(MANIFEST_BOUNDS.maxCalibrationA),
    b: z.number().min(-MANIFEST_BOUNDS.maxCalibrationB).max(MANIFEST_BOUNDS.maxCalibrationB),
  }),
  interval: intervalSchema,
  offlineMetrics: offlineMetricsSchema,
  featureStats: featureStatsSchema.optional(),
  driftReference: driftReferenceSchema.optional(),
  training: z.object({
    train: z.object({ from: z.string(), to: z.string(), samples: z.number().int() }),
    validation: z.object({ from: z.string(), to: z.string(), samples: z.number().int() }),
    hyperparameters: z.record(z.string(), z.union([z.number(), z.string()])),
  }),
  data: z.object({
    source: z.string(),
    symbols: z.array(z.string()),
    bars: z.number().int(),
    from: z.string(),
    to: z.string(),
    /** sha256 over the input files' names and contents, when trained from files. */
    sha256: z.string().optional(),
  }),
  /** sha256 of model.onnx, hex: a file that does not match is refused. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type OfflineMetrics = z.infer<typeof offlineMetricsSchema>;
export type FeatureStats = z.infer<typeof featureStatsSchema>;
export type DriftReference = z.infer<typeof driftReferenceSchema>;
export type ReferenceHistogram = z.infer<typeof referenceHistogramSchema>;

export type ManifestInterval = z.infer<typeof intervalSchema>;
export type PeriodCoverage = z.infer<typeof periodCoverage>;
