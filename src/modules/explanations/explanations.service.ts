import DataLoader from 'dataloader';
import type { Logger } from '../../infra/logger/logger.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { applyPlatt } from '../../domain/calibration.js';
import type { ModelVersionEntry } from '../models/index.js';
import type { PredictionRecord } from '../predictions/index.js';
import { invalidFeatures, invalidProbability, modelOutputInvalid, unavailableBecause } from '../predictions/index.js';
import { describeFactor, summarize } from './descriptions.js';
import { clusteredProportion } from '../../domain/statistics.js';
import type { AccuracyEvidence, Explanation, Factor } from './explanation.type.js';
import { CONFIDENCE_BUCKETS, type AccuracySource, type BandEvidence, type ConfidenceBand } from './explanations.repository.js';
import { choosePlan, writeCoalitionRows, type ShapleyPlan } from './shapley.js';

/** Per-request loaders: every explanation a request asks for is computed in one batch. */
export interface ExplanationLoaders {
  readonly explanation: DataLoader<PredictionRecord, Explanation, string>;
}

export interface ExplanationServiceDeps extends ExplanationOptions {
  /** Realized outcomes near a confidence, for historical accuracy (ExplanationsRepository). */
  readonly outcomes: AccuracySource;
  readonly logger: Logger;
}

export interface ExplanationOptions {
  /** Outcomes needed before history is trusted over the offline figure (and the offline bin's minimum). */
  readonly minSamples?: number;
  /** Distinct days those outcomes must come from (both sources); fewer and there is no figure. */
  readonly minDays?: number;
  /** Half-width of the confidence band history is read in. */
  readonly band?: number;
  /** Most rows per explanation run (default {@link MAX_ROWS_PER_RUN}). */
  readonly maxRowsPerRun?: number;
}

/**
 * Rows one explanation run may hold, which bounds its input's memory and how long it blocks the event
 * loop (figures in docs/decisions/hot-path-measurements.md). A request explaining more predictions of
 * one model than fit is split into several runs rather than one unbounded one.
 */
export const MAX_ROWS_PER_RUN = 262_144;

/**
 * `Prediction.explanation`: Shapley attributions of the served (calibrated) probability, plain words,
 * and how often the model was right at this confidence.
 *
 * The model is a black box (any ONNX model with a manifest serves), so attributions are interventional
 * Shapley values against one baseline input, the training means stored in the manifest: for each
 * coalition of features the model scores a hybrid input (those features from the prediction, the rest
 * from the baseline), and the plan in shapley.ts turns the scores into values that sum exactly to
 * probability − baseline. Every hybrid input of every explained prediction of a request goes through
 * the model in ONE run per model version (plus one for the baseline row's sake, shared: it is row 0).
 *
 * Historical accuracy comes from one SQL query per request for all predictions: realized outcomes of the
 * same model version in the 1%-wide confidence buckets spanning ±`band` around the prediction's
 * confidence, when there are at least `minSamples` of them on at least `minDays` distinct days;
 * otherwise the manifest's held-out calibration bin of the probability, on the same terms; otherwise
 * none, with the reason. Days count because outcomes of one day move together: 34 outcomes from 8 days
 * of March 2020 are 8 observations of a market, not 34. The interval treats days as the units too.
 */
export class ExplanationService {
  private readonly minSamples: number;
  private readonly minDays: number;
  private readonly band: number;
  private readonly maxRowsPerRun: number;
  private readonly plans = new Map<number, ShapleyPlan>();

  private readonly outcomes: AccuracySource;
  private readonly logger: Logger;

  constructor({ outcomes, logger, ...options }: ExplanationServiceDeps) {
    this.outcomes = outcomes;
    this.logger = logger;
    this.minSamples = options.minSamples ?? 30;
    this.minDays = options.minDays ?? 20;
    this.band = options.band ?? 0.025;
    this.maxRowsPerRun = options.maxRowsPerRun ?? MAX_ROWS_PER_RUN;
  }

  createLoaders(): ExplanationLoaders {
    return {
      // A prediction is a pure function of (model version, features), and so is its explanation.
      explanation: new DataLoader<PredictionRecord, Explanation, string>((records) => this.explain(records), {
        cacheKeyFn: (r) => `${r.model.manifest.strategy}\u0000${r.model.manifest.version}\u0000${r.featuresHash}`,
      }),
    };
  }

  private async explain(records: readonly PredictionRecord[]): Promise<Array<Explanation | Error>> {
    const accuracy = this.historicalAccuracy(records);
    const byModel = new Map<ModelVersionEntry, number[]>();
    const results: Array<Explanation | Error> = new Array(records.length);
    records.forEach((record, i) => {
      // A signal replayed from history (signals `since`) carries the recorded outcome of the model, not
      // the inputs it saw: history keeps the features' hash, not their values.
      if (record.features.length === 0) {
        results[i] = codedError(
          ErrorCode.UNAVAILABLE,
          `this ${record.symbol} prediction was replayed from history, which keeps no feature values; it cannot be explained`,
        );
        return;
      }
      const list = byModel.get(record.model);
      if (list) list.push(i);
      else byModel.set(record.model, [i]);
    });
    await Promise.all(
      [...byModel].map(async ([model, indexes]) => {
        let attributions: Attribution[];
        try {
          attributions = await this.attribute(
            model,
            indexes.map((i) => records[i]!),
          );
        } catch (error) {
          const failure = isCoded(error)
            ? error
            : unavailableBecause(`explanations (${model.manifest.strategy}@${model.manifest.version})`, error, this.logger, 'are');
          for (const i of indexes) results[i] = failure;
          return;
        }
        const accuracies = await accuracy;
        indexes.forEach((i, n) => {
          const record = records[i]!;
          const problem = invalidExplanation(record, attributions[n]!);
          results[i] = problem
            ? modelOutputInvalid(`explanation (${model.manifest.strategy}@${model.manifest.version})`, record.symbol, problem, this.logger)
            : this.assemble(model, record, attributions[n]!, accuracies[i]!);
        });
      }),
    );
    return results;
  }

  /** Shapley values of each record (model input order) and the baseline's probability, in as few runs as MAX_ROWS_PER_RUN allows: one for a normal request. */
  private async attribute(model: ModelVersionEntry, records: readonly PredictionRecord[]): Promise<Attribution[]> {
    const baseline = this.baselineInput(model);
    const plan = this.planFor(baseline.length);
    const perRecord = plan.coalitions.length;
    const recordsPerRun = Math.max(1, Math.floor((this.maxRowsPerRun - 1) / perRecord));
    const out: Attribution[] = [];
    for (let start = 0; start < records.length; start += recordsPerRun) {
      const chunk = records.slice(start, start + recordsPerRun);
      const width = baseline.length;
      const rows = 1 + chunk.length * perRecord;
      const input = new Float32Array(rows * width);
      input.set(baseline, 0); // row 0: the baseline itself, v(∅)
      chunk.forEach((record, n) => {
        const x = model.featureOrder.map((featureIndex) => record.features[featureIndex]!);
        writeCoalitionRows(plan, x, baseline, input, 1 + n * perRecord);
      });
      const raw = await model.batcher.scoreAsOneRun(input, rows);
      const calibration = model.manifest.calibration;
      const empty = applyPlatt(calibration, raw[0]!);
      const values = new Float64Array(perRecord);
      chunk.forEach((record, n) => {
        const offset = 1 + n * perRecord;
        for (let k = 0; k < perRecord; k++) values[k] = applyPlatt(calibration, raw[offset + k]!);
        // v(N) is the probability the client was served (the same input through the same model), so
        // the contributions add up to exactly what the client sees.
        out.push({ phi: plan.attribute(values, empty, record.probability), baseline: empty, method: plan.method });
      });
    }
    return out;
  }

  /** The training means in the model's input order, or a coded error naming what the manifest lacks. */
  private baselineInput(model: ModelVersionEntry): number[] {
    const { manifest } = model;
    const stats = manifest.featureStats;
    const missing = stats ? manifest.features.filter((name) => !stats.features[name]) : manifest.features;
    if (!stats || missing.length) {
      throw codedError(
        ErrorCode.UNAVAILABLE,
        `explanations are not available for ${manifest.strategy}@${manifest.version}: its manifest has no training statistics (featureStats) for ${stats ? missing.join(', ') : 'any feature'}; retrain with npm run train`,
        { strategy: manifest.strategy, version: manifest.version },
      );
    }
    return manifest.features.map((name) => stats.features[name]!.mean);
  }

  private planFor(features: number): ShapleyPlan {
    let plan = this.plans.get(features);
    if (!plan) this.plans.set(features, (plan = choosePlan(features)));
    return plan;
  }

  private assemble(model: ModelVersionEntry, record: PredictionRecord, attribution: Attribution, accuracy: Accuracy): Explanation {
    const { manifest } = model;
    const stats = manifest.featureStats!;
    const factors: Factor[] = manifest.features.map((feature, j) => {
      const value = record.features[model.featureOrder[j]!]!;
      const contribution = attribution.phi[j]!;
      const { mean, quantiles } = stats.features[feature]!;
      return { feature, value, baselineValue: mean, contribution, description: describeFactor(feature, value, quantiles, contribution) };
    });
    // Largest effect first; ties keep the manifest's order (sort is stable).
    factors.sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
    return {
      method: attribution.method,
      baseline: attribution.baseline,
      factors,
      summary: summarize(record.probability, attribution.baseline, factors),
      historicalAccuracy: accuracy.evidence.accuracy,
      historicalAccuracySource: accuracy.source,
      historicalAccuracySamples: accuracy.source === 'none' ? 0 : accuracy.evidence.rows,
      historicalEvidence: accuracy.evidence,
    };
  }

  /** One query for every record of the request; a failing database falls back to the offline figures. */
  private async historicalAccuracy(records: readonly PredictionRecord[]): Promise<Accuracy[]> {
    const bands = new Map<string, ConfidenceBand>();
    const bandOf = records.map((record) => {
      const { strategy, version } = record.model.manifest;
      const lo = Math.max(0, Math.floor((record.confidence - this.band) * CONFIDENCE_BUCKETS));
      const hi = Math.min(CONFIDENCE_BUCKETS - 1, Math.floor((record.confidence + this.band) * CONFIDENCE_BUCKETS));
      const key = `${strategy}\u0000${version}\u0000${lo}\u0000${hi}`;
      if (!bands.has(key)) bands.set(key, { strategy, version, lo, hi });
      return key;
    });
    const keys = [...bands.keys()];
    let found = new Map<string, BandEvidence>();
    try {
      const evidence = await this.outcomes.evidenceInBands([...bands.values()]);
      found = new Map(keys.map((key, i) => [key, evidence[i]!]));
    } catch (error) {
      this.logger.warn({ err: error }, 'realized outcomes are unavailable; explanations use the offline accuracy');
    }
    return records.map((record, i) => {
      const history = found.get(bandOf[i]!);
      if (history && history.samples >= this.minSamples && history.days >= this.minDays) {
        const interval = clusteredProportion({
          rows: history.samples,
          hits: history.correct,
          clusters: history.days,
          sumRows2: history.sumRows2,
          sumHits2: history.sumCorrect2,
          sumHitsRows: history.sumCorrectRows,
        })!;
        return {
          source: 'history',
          evidence: this.evidence('history', interval.value, interval.low, interval.high, history.samples, history.days, null),
        };
      }
      return this.offlineAccuracy(record, history);
    });
  }

  /**
   * The held-out calibration bin holding this probability: its observed event rate is how often "up"
   * happened there, so the signal was right that often if it leans up (BUY, or HOLD at ≥ 0.5), else
   * one minus that. A bin without the days behind it (a manifest from before they were recorded) cannot
   * say whether its evidence is thin, so it gives no figure.
   */
  private offlineAccuracy(record: PredictionRecord, history: BandEvidence | undefined): Accuracy {
    const p = record.probability;
    const bins = record.model.manifest.offlineMetrics.calibration;
    const bin = bins.find((b) => p >= b.lower && (p < b.upper || (b.upper >= 1 && p <= b.upper)));
    const need = `need at least ${this.minSamples} outcomes on at least ${this.minDays} distinct days`;
    const live = history
      ? `${history.samples} realized outcome(s) on ${history.days} day(s) at this confidence`
      : 'realized outcomes unavailable';
    if (
      bin &&
      bin.count >= this.minSamples &&
      bin.observedRate !== null &&
      bin.days !== undefined &&
      bin.days >= this.minDays &&
      bin.observedRateLow !== undefined &&
      bin.observedRateHigh !== undefined
    ) {
      const leansUp = record.signal === 'BUY' || (record.signal === 'HOLD' && p >= 0.5);
      const [value, low, high] = leansUp
        ? [bin.observedRate, bin.observedRateLow, bin.observedRateHigh]
        : [1 - bin.observedRate, 1 - bin.observedRateHigh, 1 - bin.observedRateLow];
      return { source: 'offline', evidence: this.evidence('offline', value, low, high, bin.count, bin.days, null) };
    }
    const held = !bin
      ? 'no held-out calibration bin holds this probability'
      : bin.days === undefined || bin.observedRateLow === undefined
        ? `the held-out bin [${bin.lower}, ${bin.upper}) has ${bin.count} outcome(s) but the manifest does not say on how many days (retrain to record it)`
        : `the held-out bin [${bin.lower}, ${bin.upper}) has ${bin.count} outcome(s) on ${bin.days} day(s)`;
    return {
      source: 'none',
      evidence: this.evidence(
        'none',
        null,
        null,
        null,
        history?.samples ?? 0,
        history?.days ?? 0,
        `too little evidence: ${live}; ${held}; ${need}`,
      ),
    };
  }

  private evidence(
    source: Accuracy['source'],
    accuracy: number | null,
    low: number | null,
    high: number | null,
    rows: number,
    days: number,
    reason: string | null,
  ): AccuracyEvidence {
    return { accuracy, low, high, level: ACCURACY_LEVEL, source, rows, days, method: ACCURACY_METHOD, reason };
  }
}

const ACCURACY_LEVEL = 0.95;
const ACCURACY_METHOD =
  'share right ± z·se, se day-clustered (sandwich: D/(D−1)·Σ_d (right_d − p·rows_d)² / rows², over D days), never below the binomial √(p(1−p)/rows); clamped to [0, 1]';

interface Attribution {
  readonly phi: Float64Array;
  readonly baseline: number;
  readonly method: ShapleyPlan['method'];
}

interface Accuracy {
  readonly source: 'history' | 'offline' | 'none';
  readonly evidence: AccuracyEvidence;
}

/**
 * Why an explanation cannot be served, or undefined: the baseline must be a probability and every
 * contribution finite. A model that answers NaN for some hybrid input (the baseline row, or a
 * coalition far from anything it was trained on) would otherwise fail the field as an internal error.
 */
function invalidExplanation(record: PredictionRecord, attribution: Attribution): string | undefined {
  const baseline = invalidProbability(attribution.baseline);
  if (baseline) return `${baseline} at the baseline input`;
  const bad = attribution.phi.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) return `the contribution of input #${bad} is ${String(attribution.phi[bad])}`;
  return invalidFeatures(record.features);
}

function isCoded(error: unknown): error is Error {
  return error instanceof Error && typeof (error as { extensions?: { code?: unknown } }).extensions?.code === 'string';
}
