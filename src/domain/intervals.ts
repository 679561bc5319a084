import { FEATURE_NAMES } from './features.js';
import type { ManifestInterval } from './manifest.js';

/**
 * How wide a price interval is, as one pure function of the served feature vector, so that training
 * (which calibrates the quantiles) and the gateway (which serves them) compute the very same number.
 *
 * The interval for level L is close · e^(center − q⁻_L · scale · √h) … close · e^(center + q⁺_L · scale · √h),
 * where q⁺_L and q⁻_L are conformal quantiles of the scores (r − center) / (scale · √h) on the validation
 * period: symmetric (q⁻ = q⁺, of |score|) in manifests without `lowerQuantiles`, one per tail in those
 * with them (a crash is a fall: the lower tail gets its own, larger quantile). `scale` is a volatility estimate:
 * - `split-conformal` (models trained before issue 19): the 20-bar volatility alone. It lags a crash by
 *   weeks, so in March 2020 the 95% interval covered 83.5% of 1-day outcomes.
 * - `volatility-normalised-conformal`: a weighted geometric mean of three volatility estimates of
 *   different speeds, all in the features already: the 20-bar volatility (slow), the 5-bar volatility
 *   (vol_ratio_5_20 × vol_20d, fast) and the last bar's high-low range (reacts the same day). The weights
 *   sum to 1, so the scale is a volatility (doubling every estimate doubles it); training picks them
 *   (see src/training/conformal.ts and docs/decisions/adaptive-intervals.md).
 * Each estimate is floored at `floor` before the logarithm: a flat vendor bar (high = low) must not
 * collapse the interval to a point.
 */
export const VOLATILITY_ESTIMATES = ['vol_20d', 'vol_5d', 'hl_range'] as const;
export type VolatilityEstimate = (typeof VOLATILITY_ESTIMATES)[number];

export interface IntervalScale {
  readonly weights: Readonly<Partial<Record<VolatilityEstimate, number>>>;
  readonly floor: number;
}

/** The scale of `split-conformal` manifests: 20-bar volatility, floored at 1e-6 as it always was. */
export const VOL20_SCALE: IntervalScale = { weights: { vol_20d: 1 }, floor: 1e-6 };

const VOL20 = FEATURE_NAMES.indexOf('vol_20d');
const RATIO_5_20 = FEATURE_NAMES.indexOf('vol_ratio_5_20');
const HL_RANGE = FEATURE_NAMES.indexOf('hl_range');

/** The three estimates from a feature vector in FEATURE_NAMES order (what computeFeatures returns). */
export function volatilityEstimates(values: ArrayLike<number>): Record<VolatilityEstimate, number> {
  const vol20 = values[VOL20]!;
  return { vol_20d: vol20, vol_5d: values[RATIO_5_20]! * vol20, hl_range: values[HL_RANGE]! };
}

/** Π max(estimate, floor)^weight over the scale's weights (a weight-1 estimate as it is, with no exp(log()) rounding). */
export function intervalScale(scale: IntervalScale, values: ArrayLike<number>): number {
  const estimates = volatilityEstimates(values);
  for (const name of VOLATILITY_ESTIMATES) if (scale.weights[name] === 1) return Math.max(estimates[name], scale.floor);
  let log = 0;
  for (const name of VOLATILITY_ESTIMATES) {
    const weight = scale.weights[name] ?? 0;
    if (weight !== 0) log += weight * Math.log(Math.max(estimates[name], scale.floor));
  }
  return Math.exp(log);
}

/** The conformal score of a realized forward log return: its distance from the centre in units of scale · √h. */
export function intervalScore(forwardReturn: number, scale: number, center: number, horizonBars: number): number {
  return Math.abs(signedIntervalScore(forwardReturn, scale, center, horizonBars));
}

/** The same with its sign (below the centre negative): what per-tail quantiles are taken of. */
export function signedIntervalScore(forwardReturn: number, scale: number, center: number, horizonBars: number): number {
  return (forwardReturn - center) / (scale * Math.sqrt(horizonBars));
}

/** [low, high] around `close`: close · e^(center − qLow · scale · √h) … close · e^(center + q · scale · √h). */
export function intervalBounds(
  close: number,
  scale: number,
  center: number,
  q: number,
  horizonBars: number,
  qLow: number = q,
): { low: number; high: number } {
  const unit = scale * Math.sqrt(horizonBars);
  return { low: close * Math.exp(center - qLow * unit), high: close * Math.exp(center + q * unit) };
}

/** The quantiles of `level` as [q⁻ (below the centre), q⁺ (above)], or undefined when the level is not calibrated. */
export function intervalQuantiles(interval: ManifestInterval, level: number | string): [number, number] | undefined {
  const q = interval.quantiles[String(level)];
  if (q === undefined) return undefined;
  const lower = interval.method === 'split-conformal' ? undefined : interval.lowerQuantiles?.[String(level)];
  return [lower ?? q, q];
}

/** The scale a manifest's interval is served with. */
export function scaleOfInterval(interval: ManifestInterval): IntervalScale {
  return interval.method === 'split-conformal' ? VOL20_SCALE : interval.scale;
}
