/**
 * Split-conformal price intervals. The nonconformity score of a validation sample is its forward log
 * return's distance from the training mean, in units of its own recent volatility:
 *   s = |r − μ| / (σ₂₀ · √h)
 * so the interval widens when the market is wild and narrows when it is calm. For level L the
 * quantile q_L is the ⌈(n+1)L⌉-th smallest score, which guarantees coverage ≥ L on exchangeable data;
 * the gateway serves [close · e^(μ − q_L σ₂₀ √h), close · e^(μ + q_L σ₂₀ √h)].
 */
export const INTERVAL_LEVELS = [0.8, 0.9, 0.95, 0.99] as const;

export interface ConformalIntervals {
  readonly method: 'split-conformal';
  readonly center: number; // μ, mean forward log return on training
  readonly quantiles: Record<string, number>; // level (as string) → q
}

export function fitConformal(
  center: number,
  forwardReturn: ArrayLike<number>,
  vol: ArrayLike<number>,
  horizonBars: number,
  levels: readonly number[] = INTERVAL_LEVELS,
): ConformalIntervals {
  const scores = Float64Array.from({ length: forwardReturn.length }, (_, i) =>
    score(forwardReturn[i]!, vol[i]!, center, horizonBars),
  ).sort();
  const n = scores.length;
  const quantiles: Record<string, number> = {};
  for (const level of levels) quantiles[String(level)] = scores[Math.min(n - 1, Math.ceil((n + 1) * level) - 1)]!;
  return { method: 'split-conformal', center, quantiles };
}

export function score(forwardReturn: number, vol: number, center: number, horizonBars: number): number {
  return Math.abs(forwardReturn - center) / (Math.max(vol, 1e-6) * Math.sqrt(horizonBars));
}

/** Share of samples whose forward return falls inside the level's interval. */
export function coverage(
  intervals: ConformalIntervals,
  level: number,
  forwardReturn: ArrayLike<number>,
  vol: ArrayLike<number>,
  horizonBars: number,
): number {
  const q = intervals.quantiles[String(level)];
  if (q === undefined) throw new Error(`no conformal quantile for level ${level}`);
  let inside = 0;
  for (let i = 0; i < forwardReturn.length; i++) if (score(forwardReturn[i]!, vol[i]!, intervals.center, horizonBars) <= q) inside++;
  return inside / forwardReturn.length;
}
