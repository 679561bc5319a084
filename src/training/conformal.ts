import { monthBlock } from '../domain/statistics.js';
import { VOLATILITY_ESTIMATES, intervalScale, signedIntervalScore, type IntervalScale } from '../domain/intervals.js';

/**
 * Volatility-normalised split-conformal price intervals (src/domain/intervals.ts serves them). The
 * score of a sample is its forward log return's distance from the training mean in units of a
 * volatility estimate, s = |r − μ| / (scale · √h); for level L the quantile q_L is the ⌈(n+1)L⌉-th
 * smallest validation score, which guarantees coverage ≥ L on exchangeable data.
 *
 * Exchangeability is what a crash breaks: a scale that lags the market makes March 2020 a month of
 * scores far above q. So the interval's shape is chosen, on the training period only, for coverage that
 * holds month by month: among the weighted geometric means of the three volatility estimates (weights on
 * a 0.1 grid summing to 1), each with the 5% the 95% interval leaves out split between the tails in
 * shares of 0.5 (equal tails) down to 0.1 below, the candidate whose worst training month is covered
 * best by its own training quantiles, the narrower on ties. Crashes are falls, so a larger lower tail
 * quantile buys more worst-month coverage than the same width spent evenly. The quantiles are then
 * fitted on the validation period, and the held-out period is never looked at.
 * docs/decisions/adaptive-intervals.md has the measurements behind this.
 */
export const INTERVAL_LEVELS = [0.8, 0.9, 0.95, 0.99] as const;
/** Floor of each volatility estimate (0.01% a day): keeps a flat vendor bar from collapsing the interval. */
export const SCALE_FLOOR = 1e-4;
/** The level the scale is chosen for. */
const SELECTION_LEVEL = 0.95;
const WEIGHT_STEPS = 10;
/** Shares of 1 − level left below the interval that training chooses among (0.5 = equal tails). */
export const LOWER_TAIL_SHARES = [0.5, 0.4, 0.3, 0.2, 0.1] as const;

export interface ConformalIntervals {
  readonly method: 'volatility-normalised-conformal';
  readonly center: number; // μ, mean forward log return on training
  readonly quantiles: Record<string, number>; // level (as string) → q⁺ (q⁻ too when lowerQuantiles is absent)
  readonly lowerQuantiles?: Record<string, number>; // level → q⁻
  readonly lowerTailShare?: number;
  readonly scale: IntervalScale;
}

/** What training chooses on the training period: the scale and how the left-out share is split between the tails. */
export interface IntervalShape {
  readonly scale: IntervalScale;
  readonly lowerTailShare: number;
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

/** Signed scores (r − center) / (scale · √h); their absolute values are the symmetric interval's scores. */
export function scoresOf(scales: ArrayLike<number>, forwardReturn: ArrayLike<number>, center: number, horizonBars: number): Float64Array {
  return Float64Array.from({ length: forwardReturn.length }, (_, i) =>
    signedIntervalScore(forwardReturn[i]!, scales[i]!, center, horizonBars),
  );
}

/**
 * Per-tail conformal quantiles of sorted signed scores for `level`, with `lowerShare` of 1 − level below:
 * q⁻ = −(the ⌊(n+1)·lowerShare·(1 − level)⌋-th smallest), q⁺ = the ⌈(n+1)·(1 − (1 − lowerShare)·(1 − level))⌉-th
 * smallest. Each tail then holds at most its share on exchangeable data, so coverage ≥ level.
 */
export function tailQuantiles(sortedSigned: Float64Array, level: number, lowerShare: number): [number, number] {
  const n = sortedSigned.length;
  const alpha = 1 - level;
  const low = sortedSigned[Math.max(0, Math.floor((n + 1) * lowerShare * alpha) - 1)]!;
  const high = sortedSigned[Math.min(n - 1, Math.ceil((n + 1) * (1 - (1 - lowerShare) * alpha)) - 1)]!;
  return [-low, high];
}

/** The shape whose training months are covered best at 95% (worst month first, then mean width). */
export function chooseIntervalShape(training: IntervalRows, center: number, horizonBars: number): IntervalShape {
  const months = Int32Array.from({ length: training.time.length }, (_, i) => monthBlock(training.time[i]!));
  let best: { shape: IntervalShape; worstMonth: number; width: number } | undefined;
  for (let a = 0; a <= WEIGHT_STEPS; a++) {
    for (let b = 0; a + b <= WEIGHT_STEPS; b++) {
      const weights = { vol_20d: a / WEIGHT_STEPS, vol_5d: b / WEIGHT_STEPS, hl_range: (WEIGHT_STEPS - a - b) / WEIGHT_STEPS };
      const scale: IntervalScale = {
        weights: Object.fromEntries(VOLATILITY_ESTIMATES.filter((k) => weights[k] > 0).map((k) => [k, weights[k]])),
        floor: SCALE_FLOOR,
      };
      const scales = scalesOf(scale, training);
      const scores = scoresOf(scales, training.forwardReturn, center, horizonBars);
      const sorted = Float64Array.from(scores).sort();
      let meanScale = 0;
      for (const s of scales) meanScale += s;
      meanScale /= scales.length;
      for (const lowerTailShare of LOWER_TAIL_SHARES) {
        const [qLow, qHigh] = tailQuantiles(sorted, SELECTION_LEVEL, lowerTailShare);
        const worstMonth = worstGroupCoverage(scores, months, qLow, qHigh);
        const width = (qLow + qHigh) * meanScale;
        if (!best || worstMonth > best.worstMonth || (worstMonth === best.worstMonth && width < best.width))
          best = { shape: { scale, lowerTailShare }, worstMonth, width };
      }
    }
  }
  return best!.shape;
}

/**
 * Quantiles fitted on the validation period: symmetric (of |score|, no lowerQuantiles) without
 * `lowerTailShare`, one per tail with it.
 */
export function fitConformal(
  center: number,
  scale: IntervalScale,
  validation: IntervalRows,
  horizonBars: number,
  levels: readonly number[] = INTERVAL_LEVELS,
  lowerTailShare?: number,
): ConformalIntervals {
  const signed = scoresOf(scalesOf(scale, validation), validation.forwardReturn, center, horizonBars);
  const quantiles: Record<string, number> = {};
  if (lowerTailShare === undefined) {
    const scores = signed.map(Math.abs).sort();
    for (const level of levels) quantiles[String(level)] = conformalQuantile(scores, level);
    return { method: 'volatility-normalised-conformal', center, quantiles, scale };
  }
  const sorted = signed.sort();
  const lowerQuantiles: Record<string, number> = {};
  for (const level of levels) {
    const [qLow, qHigh] = tailQuantiles(sorted, level, lowerTailShare);
    if (!(qLow > 0 && qHigh > 0))
      throw new Error(`level ${level}: the validation scores do not straddle the centre (q⁻ ${qLow}, q⁺ ${qHigh})`);
    lowerQuantiles[String(level)] = qLow;
    quantiles[String(level)] = qHigh;
  }
  return { method: 'volatility-normalised-conformal', center, quantiles, lowerQuantiles, lowerTailShare, scale };
}

/** Per row: whether its forward return falls inside the level's interval. */
export function covered(intervals: ConformalIntervals, level: number, rows: IntervalRows, horizonBars: number): Uint8Array {
  const qHigh = intervals.quantiles[String(level)];
  if (qHigh === undefined) throw new Error(`no conformal quantile for level ${level}`);
  const qLow = intervals.lowerQuantiles?.[String(level)] ?? qHigh;
  const scores = scoresOf(scalesOf(intervals.scale, rows), rows.forwardReturn, intervals.center, horizonBars);
  return Uint8Array.from(scores, (s) => (-qLow <= s && s <= qHigh ? 1 : 0));
}

/** Share of rows whose forward return falls inside the level's interval. */
export function coverage(intervals: ConformalIntervals, level: number, rows: IntervalRows, horizonBars: number): number {
  const inside = covered(intervals, level, rows, horizonBars);
  let n = 0;
  for (const c of inside) n += c;
  return n / inside.length;
}

function worstGroupCoverage(signedScores: Float64Array, groups: Int32Array, qLow: number, qHigh: number): number {
  const inside = new Map<number, [number, number]>();
  for (let i = 0; i < signedScores.length; i++) {
    const entry = inside.get(groups[i]!) ?? [0, 0];
    entry[0] += -qLow <= signedScores[i]! && signedScores[i]! <= qHigh ? 1 : 0;
    entry[1] += 1;
    inside.set(groups[i]!, entry);
  }
  let worst = 1;
  for (const [hit, n] of inside.values()) worst = Math.min(worst, hit / n);
  return worst;
}
