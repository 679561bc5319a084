import { monthBlock } from '../domain/statistics.js';
import { VOLATILITY_ESTIMATES, intervalScale, intervalScore, type IntervalScale } from '../domain/intervals.js';

/**
 * Volatility-normalised split-conformal price intervals (src/domain/intervals.ts serves them). The
 * score of a sample is its forward log return's distance from the training mean in units of a
 * volatility estimate, s = |r − μ| / (scale · √h); for level L the quantile q_L is the ⌈(n+1)L⌉-th
 * smallest validation score, which guarantees coverage ≥ L on exchangeable data.
 *
 * Exchangeability is what a crash breaks: a scale that lags the market makes March 2020 a month of
 * scores far above q. So the scale is chosen, on the training period only, for coverage that holds month
 * by month: among the weighted geometric means of the three volatility estimates (weights on a 0.1 grid
 * summing to 1), the one whose worst training month is covered best by its own training 95% quantile,
 * the narrower on ties. The quantiles are then fitted on the validation period, and the held-out period
 * is never looked at. docs/decisions/adaptive-intervals.md has the measurements behind this.
 */
export const INTERVAL_LEVELS = [0.8, 0.9, 0.95, 0.99] as const;
/** Floor of each volatility estimate (0.01% a day): keeps a flat vendor bar from collapsing the interval. */
export const SCALE_FLOOR = 1e-4;
/** The level the scale is chosen for. */
const SELECTION_LEVEL = 0.95;
const WEIGHT_STEPS = 10;

export interface ConformalIntervals {
  readonly method: 'volatility-normalised-conformal';
  readonly center: number; // μ, mean forward log return on training
  readonly quantiles: Record<string, number>; // level (as string) → q
  readonly scale: IntervalScale;
}

/** Rows of a period: feature vectors (row-major, FEATURE_NAMES order), forward returns and asOf times. */
export interface IntervalRows {
  readonly x: Float64Array;
  readonly featureCount: number;
  readonly forwardReturn: ArrayLike<number>;
  readonly time: ArrayLike<number>;
}

/** The conformal quantile of level L: the ⌈(n+1)L⌉-th smallest score (the largest when that is past n). */
export function conformalQuantile(sortedScores: Float64Array, level: number): number {
  const n = sortedScores.length;
  return sortedScores[Math.min(n - 1, Math.ceil((n + 1) * level) - 1)]!;
}

/** The scale of every row. */
export function scalesOf(scale: IntervalScale, rows: IntervalRows): Float64Array {
  const F = rows.featureCount;
  return Float64Array.from({ length: rows.forwardReturn.length }, (_, i) => intervalScale(scale, rows.x.subarray(i * F, (i + 1) * F)));
}

export function scoresOf(scales: ArrayLike<number>, forwardReturn: ArrayLike<number>, center: number, horizonBars: number): Float64Array {
  return Float64Array.from({ length: forwardReturn.length }, (_, i) => intervalScore(forwardReturn[i]!, scales[i]!, center, horizonBars));
}

/** The scale whose training months are covered best at 95% (worst month first, then mean width). */
export function chooseScale(training: IntervalRows, center: number, horizonBars: number): IntervalScale {
  const months = Int32Array.from({ length: training.time.length }, (_, i) => monthBlock(training.time[i]!));
  let best: { scale: IntervalScale; worstMonth: number; width: number } | undefined;
  for (let a = 0; a <= WEIGHT_STEPS; a++) {
    for (let b = 0; a + b <= WEIGHT_STEPS; b++) {
      const weights = { vol_20d: a / WEIGHT_STEPS, vol_5d: b / WEIGHT_STEPS, hl_range: (WEIGHT_STEPS - a - b) / WEIGHT_STEPS };
      const scale: IntervalScale = {
        weights: Object.fromEntries(VOLATILITY_ESTIMATES.filter((k) => weights[k] > 0).map((k) => [k, weights[k]])),
        floor: SCALE_FLOOR,
      };
      const scales = scalesOf(scale, training);
      const scores = scoresOf(scales, training.forwardReturn, center, horizonBars);
      const q = conformalQuantile(Float64Array.from(scores).sort(), SELECTION_LEVEL);
      const worstMonth = worstGroupCoverage(scores, months, q);
      let width = 0;
      for (const s of scales) width += s;
      width = (q * width) / scales.length;
      if (!best || worstMonth > best.worstMonth || (worstMonth === best.worstMonth && width < best.width))
        best = { scale, worstMonth, width };
    }
  }
  return best!.scale;
}

export function fitConformal(
  center: number,
  scale: IntervalScale,
  validation: IntervalRows,
  horizonBars: number,
  levels: readonly number[] = INTERVAL_LEVELS,
): ConformalIntervals {
  const scores = scoresOf(scalesOf(scale, validation), validation.forwardReturn, center, horizonBars).sort();
  const quantiles: Record<string, number> = {};
  for (const level of levels) quantiles[String(level)] = conformalQuantile(scores, level);
  return { method: 'volatility-normalised-conformal', center, quantiles, scale };
}

/** Per row: whether its forward return falls inside the level's interval. */
export function covered(intervals: ConformalIntervals, level: number, rows: IntervalRows, horizonBars: number): Uint8Array {
  const q = intervals.quantiles[String(level)];
  if (q === undefined) throw new Error(`no conformal quantile for level ${level}`);
  const scores = scoresOf(scalesOf(intervals.scale, rows), rows.forwardReturn, intervals.center, horizonBars);
  return Uint8Array.from(scores, (s) => (s <= q ? 1 : 0));
}

/** Share of rows whose forward return falls inside the level's interval. */
export function coverage(intervals: ConformalIntervals, level: number, rows: IntervalRows, horizonBars: number): number {
  const inside = covered(intervals, level, rows, horizonBars);
  let n = 0;
  for (const c of inside) n += c;
  return n / inside.length;
}

function worstGroupCoverage(scores: Float64Array, groups: Int32Array, q: number): number {
  const inside = new Map<number, [number, number]>();
  for (let i = 0; i < scores.length; i++) {
    const entry = inside.get(groups[i]!) ?? [0, 0];
    entry[0] += scores[i]! <= q ? 1 : 0;
    entry[1] += 1;
    inside.set(groups[i]!, entry);
  }
  let worst = 1;
  for (const [hit, n] of inside.values()) worst = Math.min(worst, hit / n);
  return worst;
}
