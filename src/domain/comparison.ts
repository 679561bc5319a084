import { DEFAULT_LEVEL, DEFAULT_REPLICATES, DEFAULT_SEED, monthBlock, normalQuantile, resampleBlocks } from './statistics.js';

/**
 * Comparing two models on the same realized outcomes. Pure (no I/O, no clock, no Math.random).
 *
 * The evidence is paired: on each (symbol, asOf) row both models predicted and one outcome happened, so
 * the row's loss difference lossA − lossB removes what the row itself made hard. Rows of one day share a
 * market, so the unit of evidence is the day: d_t = mean over day t's rows of (lossA − lossB), and every
 * figure below treats the T daily values d_1..d_T (in date order) as the series.
 *
 * - Diebold–Mariano: DM = d̄ / sqrt(LRV / T), two-sided p-value from the standard normal. LRV is the
 *   Newey–West long-run variance with Bartlett weights, γ_0 + 2 Σ_{k=1..L} (1 − k/(L+1)) γ_k, γ_k the
 *   lag-k autocovariance with divisor T; lag L = max(h − 1, ⌊T^(1/3)⌋) for a horizon of h bars (an
 *   h-bar outcome overlaps the next h − 1 days' outcomes, so their differences are correlated at least
 *   that far; ⌊T^(1/3)⌋ is the usual rate for whatever else there is).
 * - Interval of d̄: the calendar-block bootstrap of statistics.ts (whole UTC months of days drawn with
 *   replacement, fixed seed), the statistic being the mean of the drawn days' d_t.
 * - Power: minimum detectable effect at 80% power, 5% two-sided, MDE = (z_0.975 + z_0.8) · sqrt(LRV/T);
 *   days still needed to detect the observed d̄: LRV · (z_0.975 + z_0.8)² / d̄² − T, rounded up, at least 0.
 */

/** One paired row: the day of its asOf (UTC, YYYY-MM-DD) and each model's loss on it. */
export interface PairedLoss {
  readonly day: string;
  readonly lossA: number;
  readonly lossB: number;
}

/** One day of paired rows: how many, and each model's mean loss over them. */
export interface DailyLoss {
  /** UTC date of the rows' asOf, YYYY-MM-DD. */
  readonly day: string;
  readonly rows: number;
  readonly meanA: number;
  readonly meanB: number;
}

export type ComparisonVerdict = 'A_BETTER' | 'B_BETTER' | 'NO_DIFFERENCE_YET';

export interface ComparisonOptions {
  /** Bars of the strategy's horizon: the lag is at least horizonBars − 1. */
  readonly horizonBars: number;
  readonly level?: number;
  readonly replicates?: number;
  readonly seed?: number;
  /** Fewer days than this and no interval, verdict or days-still-needed is given (default {@link MIN_COMPARISON_DAYS}). */
  readonly minDays?: number;
  /** Fewer calendar months than this and no interval (too few blocks to resample) (default 6). */
  readonly minBlocks?: number;
}

export interface LossComparisonResult {
  /** Mean over days of each model's daily mean loss; null without days. */
  readonly meanA: number | null;
  readonly meanB: number | null;
  /** d̄ = mean over days of (daily mean loss of A − of B): negative favours A (lower loss), positive favours B. */
  readonly meanDifference: number | null;
  readonly interval: { low: number; high: number; level: number; widened: boolean } | null;
  readonly longRunVariance: number | null;
  readonly dmStatistic: number | null;
  readonly pValue: number | null;
  readonly mde80: number | null;
  readonly daysStillNeeded: number | null;
  readonly verdict: ComparisonVerdict;
  /** Why some figure is null or the verdict is not decisive for want of evidence; null when nothing is missing. */
  readonly note: string | null;
  readonly days: number;
  readonly rows: number;
  readonly lag: number;
  readonly blocks: number;
}

export const MIN_COMPARISON_DAYS = 20;
const DEFAULT_MIN_BLOCKS = 6;
/** z_0.975 + z_0.8: a 5% two-sided test with 80% power. */
export const POWER_80_Z = normalQuantile(0.975) + normalQuantile(0.8);

export const COMPARISON_TEST =
  'Diebold–Mariano on daily mean loss differences (a − b), Newey–West (Bartlett) long-run variance, normal p-value, two-sided';
export const LAG_RULE = 'max(horizonBars − 1, floor(days^(1/3)))';

/** Per-day means of paired rows, in date order: what the SQL of the metrics repository computes. */
export function dailyLosses(rows: readonly PairedLoss[]): DailyLoss[] {
  const byDay = new Map<string, { rows: number; a: number; b: number }>();
  for (const r of rows) {
    const d = byDay.get(r.day) ?? { rows: 0, a: 0, b: 0 };
    d.rows++;
    d.a += r.lossA;
    d.b += r.lossB;
    byDay.set(r.day, d);
  }
  return [...byDay]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([day, d]) => ({ day, rows: d.rows, meanA: d.a / d.rows, meanB: d.b / d.rows }));
}

/** Newey–West long-run variance of `x` with Bartlett weights up to `lag` (autocovariances with divisor T). */
export function neweyWestVariance(x: ArrayLike<number>, lag: number): number {
  const T = x.length;
  if (T === 0) return Number.NaN;
  let mean = 0;
  for (let t = 0; t < T; t++) mean += x[t]!;
  mean /= T;
  const gamma = (k: number) => {
    let s = 0;
    for (let t = k; t < T; t++) s += (x[t]! - mean) * (x[t - k]! - mean);
    return s / T;
  };
  let v = gamma(0);
  for (let k = 1; k <= Math.min(lag, T - 1); k++) v += 2 * (1 - k / (lag + 1)) * gamma(k);
  return Math.max(0, v);
}

/** The Newey–West lag for T days of an h-bar horizon: see the file comment. */
export function comparisonLag(days: number, horizonBars: number): number {
  return Math.max(horizonBars - 1, Math.floor(Math.cbrt(days)));
}

/** Standard normal CDF, from erfc (W. J. Cody's rational approximations via Numerical Recipes' erfc, |ε| < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/**
 * Every figure of the comparison of one loss over `days` (any order; sorted by date here). With no days
 * every figure is null and the verdict NO_DIFFERENCE_YET: no evidence is an answer, not an error.
 */
export function compareDailyLosses(days: readonly DailyLoss[], options: ComparisonOptions): LossComparisonResult {
  const level = options.level ?? DEFAULT_LEVEL;
  const minDays = options.minDays ?? MIN_COMPARISON_DAYS;
  const minBlocks = options.minBlocks ?? DEFAULT_MIN_BLOCKS;
  const sorted = [...days].sort((x, y) => (x.day < y.day ? -1 : x.day > y.day ? 1 : 0));
  const T = sorted.length;
  const rows = sorted.reduce((s, d) => s + d.rows, 0);
  const lag = comparisonLag(T, options.horizonBars);
  const blockKeys = sorted.map((d) => monthBlock(Date.parse(`${d.day}T00:00:00Z`)));
  const blocks = new Set(blockKeys).size;
  const base = { days: T, rows, lag, blocks };
  if (T === 0) {
    return {
      ...base,
      meanA: null,
      meanB: null,
      meanDifference: null,
      interval: null,
      longRunVariance: null,
      dmStatistic: null,
      pValue: null,
      mde80: null,
      daysStillNeeded: null,
      verdict: 'NO_DIFFERENCE_YET',
      note: 'no paired rows with realized outcomes',
    };
  }
  const d = Float64Array.from(sorted, (x) => x.meanA - x.meanB);
  const meanDifference = sum(d) / T;
  const lrv = neweyWestVariance(d, lag);
  const se = Math.sqrt(lrv / T);
  const dmStatistic = se > 0 ? meanDifference / se : null;
  const pValue = dmStatistic === null ? null : 2 * (1 - normalCdf(Math.abs(dmStatistic)));
  const notes: string[] = [];

  let interval: LossComparisonResult['interval'] = null;
  if (blocks < minBlocks) notes.push(`the days span ${blocks} calendar month(s); an interval needs at least ${minBlocks}`);
  else {
    // Per month: Σ d_t and the number of days, so a replicate's mean of the drawn days is a ratio of sums.
    const index = new Map([...new Set(blockKeys)].map((k, i) => [k, i]));
    const sums = new Float64Array(blocks);
    const count = new Float64Array(blocks);
    blockKeys.forEach((k, t) => {
      const b = index.get(k)!;
      sums[b]! += d[t]!;
      count[b]!++;
    });
    const { estimates } = resampleBlocks(
      blocks,
      ['meanDifference'],
      { level, seed: options.seed ?? DEFAULT_SEED, replicates: options.replicates ?? DEFAULT_REPLICATES },
      (drawn) => {
        let s = 0;
        let n = 0;
        for (const b of drawn) {
          s += sums[b]!;
          n += count[b]!;
        }
        return { meanDifference: s / n };
      },
    );
    const e = estimates[0]!;
    interval = { low: e.low, high: e.high, level, widened: e.widened };
  }

  let daysStillNeeded: number | null = null;
  if (T < minDays) notes.push(`${T} day(s) of paired outcomes; a verdict and days still needed need at least ${minDays}`);
  else if (meanDifference === 0) notes.push('the observed difference is 0: no number of days would detect it');
  else daysStillNeeded = Math.max(0, Math.ceil((lrv * POWER_80_Z ** 2) / meanDifference ** 2 - T));
  if (dmStatistic === null) notes.push('the daily differences do not vary: no test statistic');

  // Decisive only when both the bootstrap interval and the DM test exclude 0 on the same side: the two
  // read the same evidence differently (resampled months, a normal approximation), and a claim that one
  // model is better should not rest on the more optimistic of them.
  const alpha = 1 - level;
  let verdict: ComparisonVerdict = 'NO_DIFFERENCE_YET';
  if (T >= minDays && interval && pValue !== null && pValue < alpha) {
    if (interval.high < 0 && meanDifference < 0) verdict = 'A_BETTER';
    else if (interval.low > 0 && meanDifference > 0) verdict = 'B_BETTER';
  }
  return {
    ...base,
    meanA: sum(sorted.map((x) => x.meanA)) / T,
    meanB: sum(sorted.map((x) => x.meanB)) / T,
    meanDifference,
    interval,
    longRunVariance: lrv,
    dmStatistic,
    pValue,
    mde80: POWER_80_Z * se,
    daysStillNeeded,
    verdict,
    note: notes.length ? notes.join('; ') : null,
  };
}

function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
}
