import { FEATURE_NAMES } from './features.js';
import type { ManifestInterval } from './manifest.js';

/**
 * How wide a price interval is, as one pure function of the served feature vector, so that training
 * (which calibrates the quantiles) and the gateway (which serves them) compute the very same number.
 *
 * The interval for level L is close · e^(center ± q_L · scale · √h), where q_L is a conformal quantile of
 * the scores |r − center| / (scale · √h) on the validation period. `scale` is a volatility estimate:
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
  return Math.abs(forwardReturn - center) / (scale * Math.sqrt(horizonBars));
}

/** [low, high] around `close` for quantile q: close · e^(center ± q · scale · √h). */
export function intervalBounds(
  close: number,
  scale: number,
  center: number,
  q: number,
  horizonBars: number,
): { low: number; high: number } {
  const spread = q * scale * Math.sqrt(horizonBars);
  return { low: close * Math.exp(center - spread), high: close * Math.exp(center + spread) };
}

/** The scale a manifest's interval is served with. */
export function scaleOfInterval(interval: ManifestInterval): IntervalScale {
  return interval.method === 'split-conformal' ? VOL20_SCALE : interval.scale;
}
