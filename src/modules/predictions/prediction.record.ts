import type { Bar } from '../../infra/market-data/market-data.js';
import { isStaleBars } from '../../infra/market-data/resilient.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { intervalBounds, intervalQuantiles, intervalScale, scaleOfInterval } from '../../domain/intervals.js';
import { signalOf, type Signal } from '../../domain/signal.js';
import type { ModelVersionEntry } from '../models/index.js';
import { invalidFeatures, invalidNumbers, invalidProbability } from './output-guard.js';

/**
 * What one prediction is once scored: the record, its confidence and price interval, and whether every
 * number in it can be served. The service (predictions.service.ts) computes; this says what it computed.
 */

/** A served prediction, before GraphQL shapes it. */
export interface PredictionRecord {
  readonly symbol: string;
  readonly strategy: string;
  readonly horizon: string;
  readonly asOf: Date;
  readonly signal: Signal;
  readonly probability: number;
  readonly confidence: number;
  /** No return model is served yet, so this is null rather than a guess. */
  readonly expectedReturn: number | null;
  readonly featuresHash: string;
  readonly stale: boolean;
  readonly quote: Bar;
  readonly model: ModelVersionEntry;
  /** The volatility estimate the interval scales with (src/domain/intervals.ts; vol_20d for split-conformal manifests). */
  readonly volatility: number;
  /** The feature vector the model saw, in FEATURE_NAMES order (explanations perturb it). */
  readonly features: readonly number[];
  /** Set on point-in-time answers only (predictions.as-of.ts): what was asked and how the version was chosen. */
  readonly pointInTime?: PointInTimeNote;
}

/** How a point-in-time prediction was answered. */
export interface PointInTimeNote {
  /** The instant asked about; the prediction's `asOf` is the last stored bar at or before it. */
  readonly requested: Date;
  readonly versionChosenBy: VersionChoice;
  /** The `asOf` argument as given (undefined: the newest stored bar): with askedVersion, what keys the prediction's id. */
  readonly askedAsOf: Date | undefined;
  /** The `version` argument as given (undefined: chosen by the serving record). */
  readonly askedVersion: string | undefined;
}

/** Why a point-in-time prediction used its version. */
export type VersionChoice = 'REQUESTED' | 'RECORDED_ACTIVE' | 'CURRENT_ACTIVE';

export interface CachedFeatures {
  values: number[];
  hash: string;
}

/**
 * Where predictions go once made: the history of every prediction served (queries and the signals
 * monitor alike) and of every shadow version's, which is recorded and never served. Both must return
 * at once and never throw; the history module's `historyOfPredictions` is the one in production.
 */
export interface PredictionSink {
  served(records: readonly PredictionRecord[]): void;
  shadow(records: readonly PredictionRecord[]): void;
}

/** The record of `model`'s calibrated `probability` for the window of `bars` ending at the newest. */
export function recordOf(
  model: ModelVersionEntry,
  symbol: string,
  bars: readonly Bar[],
  features: CachedFeatures,
  probability: number,
): PredictionRecord {
  const quote = bars.at(-1)!;
  const stale = isStaleBars(bars);
  const { manifest } = model;
  const signal = signalOf(manifest.signal, probability);
  return {
    symbol,
    strategy: manifest.strategy,
    horizon: manifest.horizon,
    asOf: quote.time,
    signal,
    probability,
    confidence: confidenceOf(signal, probability),
    expectedReturn: null,
    featuresHash: features.hash,
    stale,
    quote,
    model,
    volatility: intervalScale(scaleOfInterval(manifest.interval), features.values),
    features: features.values,
  };
}

/**
 * The calibrated probability that the signal is right: P(up) for BUY, P(not up) for SELL, and for
 * HOLD the probability of the likelier direction (HOLD says the model does not lean far enough to act).
 */
export function confidenceOf(signal: Signal, probability: number): number {
  if (signal === 'BUY') return probability;
  if (signal === 'SELL') return 1 - probability;
  return Math.max(probability, 1 - probability);
}

/** The price range for the horizon at `level`, from the manifest's conformal quantiles and the record's scale. */
export function priceInterval(record: PredictionRecord, level: number): { level: number; low: number; high: number } {
  const { interval } = record.model.manifest;
  const q = intervalQuantiles(interval, level);
  if (q === undefined) {
    throw codedError(
      ErrorCode.BAD_USER_INPUT,
      `interval level ${level} is not calibrated for this model; use one of ${Object.keys(interval.quantiles).join(', ')}`,
    );
  }
  const bounds = intervalAt(record, q);
  // Served records were checked at every calibrated level (invalidPrediction); this only guards a caller that skipped that.
  const problem = invalidNumbers({ 'interval.low': bounds.low, 'interval.high': bounds.high });
  if (problem)
    throw codedError(ErrorCode.MODEL_OUTPUT_INVALID, `the interval for "${record.symbol}" cannot be served: ${problem}`, {
      symbol: record.symbol,
    });
  return { level, ...bounds };
}

/** `q` is [q⁻, q⁺] (intervalQuantiles). */
function intervalAt(record: PredictionRecord, [qLow, qHigh]: [number, number]): { low: number; high: number } {
  const { interval, horizonBars } = record.model.manifest;
  return intervalBounds(record.quote.close, Math.max(record.volatility, 1e-6), interval.center, qHigh, horizonBars, qLow);
}

/**
 * Why a prediction cannot be served or recorded, or undefined: every number a client can read from it
 * (probability, confidence, expected return, the quote, the interval at every calibrated level) must be
 * finite, the probability in [0, 1].
 */
export function invalidPrediction(record: PredictionRecord): string | undefined {
  const problem =
    invalidProbability(record.probability) ??
    invalidNumbers({ confidence: record.confidence, expectedReturn: record.expectedReturn, volatility: record.volatility }) ??
    invalidNumbers({
      'quote.open': record.quote.open,
      'quote.high': record.quote.high,
      'quote.low': record.quote.low,
      'quote.close': record.quote.close,
      'quote.volume': record.quote.volume,
    }) ??
    invalidFeatures(record.features);
  if (problem) return problem;
  // Checked without building a name per level and bound: every prediction made passes here.
  for (const level of Object.keys(record.model.manifest.interval.quantiles)) {
    const { low, high } = intervalAt(record, intervalQuantiles(record.model.manifest.interval, level)!);
    if (!Number.isFinite(low)) return `interval(level: ${level}).low is ${String(low)}`;
    if (!Number.isFinite(high)) return `interval(level: ${level}).high is ${String(high)}`;
  }
  return undefined;
}
