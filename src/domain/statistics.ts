import { mulberry32 } from '../shared/random.js';
/**
 * Uncertainty of model metrics: a calendar-block bootstrap. Pure (no I/O, no clock, no Math.random): the
 * same rows, reference rate and options always give the same estimates, bit for bit.
 *
 * Why blocks: outcomes of one day (many symbols, one market) and of neighbouring days are correlated, so
 * resampling single rows would pretend there is far more independent evidence than there is. Rows are
 * grouped into calendar blocks (UTC months by default) and a replicate draws as many whole blocks, with
 * replacement, as there are blocks. Every statistic below decomposes into per-block sums (AUC into a
 * block × block matrix of concordant pairs), so a replicate costs O(blocks²), not O(rows): the rows are
 * touched once, however many replicates are drawn.
 *
 * Interval: the percentile interval of the replicates at `level`. A percentile interval need not contain
 * the point value (a skewed statistic on few blocks); where it does not, the interval is widened to the
 * point value and `widened` says so, so every interval contains its value and none hides that it was moved.
 */

export interface ScoredOutcome {
  /** Calendar block of the row (see {@link monthBlock}); only equality matters. */
  readonly block: number;
  /** Predicted probability of "up". */
  readonly p: number;
  /** 1 when the outcome was up. */
  readonly y: number;
  /** Whether the 95% interval held the outcome; null when the row has no 95% interval outcome. */
  readonly covered: boolean | null;
}

export const METRIC_NAMES = [
  'accuracy',
  'accuracyOverBaseline',
  'brierSkillVsTrainingBaseRate',
  'brierSkillVsHindsightBaseRate',
  'auc',
  'ece',
  'intervalCoverage',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface MetricEstimate {
  readonly metric: MetricName;
  /** The statistic on the rows as they are. */
  readonly value: number;
  readonly low: number;
  readonly high: number;
  readonly level: number;
  /** True when the percentile interval excluded `value` and was widened to reach it. */
  readonly widened: boolean;
}

export interface BootstrapOptions {
  /** Replicates drawn (default 1,000). */
  readonly replicates?: number;
  /** PRNG seed (default {@link DEFAULT_SEED}). */
  readonly seed?: number;
  /** Two-sided interval level (default 0.95). */
  readonly level?: number;
  /** Equal-width probability bins of the ECE (default 10, as everywhere else). */
  readonly eceBins?: number;
}

/** What `method` says wherever estimates are served or stored. */
export const BOOTSTRAP_METHOD =
  'calendar-block percentile bootstrap: whole UTC months drawn with replacement; the percentile interval, widened to the point value where it excludes it';
export const BOOTSTRAP_BLOCK = 'MONTH';

export const DEFAULT_REPLICATES = 1_000;
export const DEFAULT_SEED = 20_200_316;
export const DEFAULT_LEVEL = 0.95;

export type Verdict = 'BETTER_THAN_BASE_RATE' | 'NO_BETTER_THAN_BASE_RATE' | 'WORSE_THAN_BASE_RATE';

export interface BootstrapResult {
  readonly estimates: MetricEstimate[];
  readonly blocks: number;
  readonly replicates: number;
  readonly seed: number;
  readonly level: number;
  /** From the Brier-skill-vs-training-base-rate interval; null when that skill is undefined. */
  readonly verdict: Verdict | null;
}

/** UTC calendar month of an instant, as a number (year × 12 + month): the default block. */
export function monthBlock(time: number | Date): number {
  const d = typeof time === 'number' ? new Date(time) : time;
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

/** The PRNG drawing block indexes: seeded, so the same rows always give the same intervals. */
export const seededRandom = mulberry32;

/** Linear-interpolation percentile (R's type 7) of ascending `sorted`; q in [0, 1]. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error('percentile of nothing');
  const h = (n - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Brier skill against always predicting `reference`: 1 − brier / mean((reference − y)²); null when the reference is perfect. */
export function brierSkill(p: ArrayLike<number>, y: ArrayLike<number>, reference: number): number | null {
  let model = 0;
  let base = 0;
  for (let i = 0; i < p.length; i++) {
    model += (p[i]! - y[i]!) ** 2;
    base += (reference - y[i]!) ** 2;
  }
  return base > 0 ? 1 - model / base : null;
}

/**
 * Area under the ROC curve = the Mann-Whitney probability that a random up-row got a higher p than a
 * random down-row (ties count ½), in O(n log n). Null without both classes.
 */
export function auc(p: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const stats = summarize(
    Array.from({ length: p.length }, (_, i) => ({ block: 0, p: p[i]!, y: y[i]!, covered: null })),
    10,
  );
  const pos = stats.pos[0] ?? 0;
  const neg = stats.neg[0] ?? 0;
  return pos > 0 && neg > 0 ? stats.concordant[0]! / (pos * neg) : null;
}

/**
 * Block-bootstrap estimates of every metric over `rows`. `trainingBaseRate` is the up-rate the model could
 * know before these rows (the validation period's, which calibration was fitted on); null when unknown,
 * which leaves out the metrics that need it and the verdict.
 */
export function blockBootstrap(
  rows: readonly ScoredOutcome[],
  trainingBaseRate: number | null,
  options: BootstrapOptions = {},
): BootstrapResult {
  const eceBins = options.eceBins ?? 10;
  const stats = summarize(rows, eceBins);
  const weights = new Float64Array(stats.blocks);
  const resampled = resampleBlocks(stats.blocks, METRIC_NAMES, options, (drawn) => {
    weights.fill(0);
    for (const b of drawn) weights[b]!++;
    return measure(stats, weights, trainingBaseRate, eceBins);
  });
  const skill = resampled.estimates.find((e) => e.metric === 'brierSkillVsTrainingBaseRate');
  return { ...resampled, verdict: skill ? verdictOf(skill) : null };
}

/** A statistic of the sample made of the blocks `drawn` (block indexes, in draw order), by name; null where undefined. */
export type BlockStatistic<M extends string> = (drawn: Uint32Array) => Readonly<Record<M, number | null>>;

export interface ResampledEstimate<M extends string> extends Omit<MetricEstimate, 'metric'> {
  readonly metric: M;
}

/**
 * The calendar-block bootstrap itself, for any statistic: the point value is `statistic` of every block
 * once, in order; each of `replicates` replicates draws `blocks` block indexes uniformly with replacement
 * from the seeded PRNG and hands them to `statistic` in draw order (statistics of a path, such as a
 * drawdown, read them as a concatenation; sums need only the counts). The interval is the percentile
 * interval at `level` over the replicates where the statistic is defined, widened to the point value
 * where it excludes it (`widened`). Metrics undefined at the point, or in every replicate, are left out.
 * Model metrics ({@link blockBootstrap}) and backtest figures (modules/backtest) both resample here.
 */
export function resampleBlocks<M extends string>(
  blocks: number,
  names: readonly M[],
  options: Omit<BootstrapOptions, 'eceBins'>,
  statistic: BlockStatistic<M>,
): { estimates: Array<ResampledEstimate<M>>; blocks: number; replicates: number; seed: number; level: number } {
  const replicates = options.replicates ?? DEFAULT_REPLICATES;
  const seed = options.seed ?? DEFAULT_SEED;
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(replicates) || replicates < 1) throw new Error(`replicates must be a positive integer (got ${replicates})`);
  if (!(level > 0 && level < 1)) throw new Error(`level must be in (0, 1) (got ${level})`);
  const B = blocks;
  const result = { blocks: B, replicates, seed, level };
  if (B === 0) return { ...result, estimates: [] };

  const point = statistic(Uint32Array.from({ length: B }, (_, b) => b));
  const draws = names.map(() => new Float64Array(replicates));
  const random = seededRandom(seed);
  const drawn = new Uint32Array(B);
  for (let r = 0; r < replicates; r++) {
    for (let k = 0; k < B; k++) drawn[k] = Math.floor(random() * B);
    const m = statistic(drawn);
    names.forEach((name, j) => (draws[j]![r] = m[name] ?? Number.NaN));
  }

  const alpha = (1 - level) / 2;
  const estimates: Array<ResampledEstimate<M>> = [];
  names.forEach((metric, j) => {
    const value = point[metric];
    if (value === null) return;
    // A replicate can leave a statistic undefined (no up-rows drawn: no AUC); the interval is over the rest.
    const finite = draws[j]!.filter(Number.isFinite).sort();
    if (finite.length === 0) return;
    const low = percentile(finite, alpha);
    const high = percentile(finite, 1 - alpha);
    estimates.push({ metric, value, low: Math.min(low, value), high: Math.max(high, value), level, widened: value < low || value > high });
  });
  return { ...result, estimates };
}

/** Better when the whole interval of Brier skill is above 0, worse when below, otherwise no better. */
export function verdictOf(skill: Pick<MetricEstimate, 'low' | 'high'>): Verdict {
  if (skill.low > 0) return 'BETTER_THAN_BASE_RATE';
  if (skill.high < 0) return 'WORSE_THAN_BASE_RATE';
  return 'NO_BETTER_THAN_BASE_RATE';
}

/**
 * A share of hits with an interval that treats each day (cluster) as the unit of evidence: the ratio
 * estimator's cluster-robust (sandwich) variance D/(D−1) · Σ_d (h_d − p̂ n_d)² / N², over D days of n_d
 * rows and h_d hits, never below the independent-rows binomial variance p̂(1 − p̂)/N, clamped to [0, 1].
 * Symmetric around p̂ before clamping, so it always contains p̂. Takes sums, so SQL can provide them.
 */
export interface ClusteredCounts {
  readonly rows: number;
  readonly hits: number;
  readonly clusters: number;
  /** Σ n_d², Σ h_d², Σ h_d·n_d over the clusters. */
  readonly sumRows2: number;
  readonly sumHits2: number;
  readonly sumHitsRows: number;
}

export function clusteredProportion(c: ClusteredCounts, level = DEFAULT_LEVEL): { value: number; low: number; high: number } | null {
  if (c.rows <= 0) return null;
  const p = c.hits / c.rows;
  const residual = Math.max(0, c.sumHits2 - 2 * p * c.sumHitsRows + p * p * c.sumRows2);
  const clustered = c.clusters > 1 ? ((c.clusters / (c.clusters - 1)) * residual) / (c.rows * c.rows) : Number.POSITIVE_INFINITY;
  const variance = Math.max(clustered, (p * (1 - p)) / c.rows);
  const half = normalQuantile(1 - (1 - level) / 2) * Math.sqrt(variance);
  return { value: p, low: Math.max(0, p - half), high: Math.min(1, p + half) };
}

/** Clustered counts from explicit per-cluster (rows, hits) pairs: for callers holding rows, and for tests. */
export function clusteredCounts(perCluster: ReadonlyArray<{ rows: number; hits: number }>): ClusteredCounts {
  let rows = 0;
  let hits = 0;
  let sumRows2 = 0;
  let sumHits2 = 0;
  let sumHitsRows = 0;
  for (const c of perCluster) {
    rows += c.rows;
    hits += c.hits;
    sumRows2 += c.rows * c.rows;
    sumHits2 += c.hits * c.hits;
    sumHitsRows += c.hits * c.rows;
  }
  return { rows, hits, clusters: perCluster.length, sumRows2, sumHits2, sumHitsRows };
}

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(q: number): number {
  if (!(q > 0 && q < 1)) throw new Error(`normalQuantile needs q in (0, 1) (got ${q})`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (t: number) =>
    (((((c[0]! * t + c[1]!) * t + c[2]!) * t + c[3]!) * t + c[4]!) * t + c[5]!) / ((((d[0]! * t + d[1]!) * t + d[2]!) * t + d[3]!) * t + 1);
  if (q < 0.02425) return tail(Math.sqrt(-2 * Math.log(q)));
  if (q > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - q)));
  const s = q - 0.5;
  const t = s * s;
  return (
    ((((((a[0]! * t + a[1]!) * t + a[2]!) * t + a[3]!) * t + a[4]!) * t + a[5]!) * s) /
    (((((b[0]! * t + b[1]!) * t + b[2]!) * t + b[3]!) * t + b[4]!) * t + 1)
  );
}

/** Per-block sufficient statistics: everything a replicate needs, without the rows. */
interface BlockStats {
  readonly blocks: number;
  readonly n: Float64Array;
  readonly ups: Float64Array;
  readonly correct: Float64Array;
  /** Σ (p − y)². */
  readonly squared: Float64Array;
  readonly covN: Float64Array;
  readonly covHit: Float64Array;
  /** [block × bin]: rows, Σ p, Σ y. */
  readonly binN: Float64Array;
  readonly binP: Float64Array;
  readonly binY: Float64Array;
  readonly pos: Float64Array;
  readonly neg: Float64Array;
  /** [b × c]: pairs (up-row of block b, down-row of block c) with p_up > p_down, ties ½. */
  readonly concordant: Float64Array;
}

function summarize(rows: readonly ScoredOutcome[], bins: number): BlockStats {
  const keys = [...new Set(rows.map((r) => r.block))].sort((a, b) => a - b);
  const index = new Map(keys.map((k, i) => [k, i]));
  const B = keys.length;
  const s: BlockStats = {
    blocks: B,
    n: new Float64Array(B),
    ups: new Float64Array(B),
    correct: new Float64Array(B),
    squared: new Float64Array(B),
    covN: new Float64Array(B),
    covHit: new Float64Array(B),
    binN: new Float64Array(B * bins),
    binP: new Float64Array(B * bins),
    binY: new Float64Array(B * bins),
    pos: new Float64Array(B),
    neg: new Float64Array(B),
    concordant: new Float64Array(B * B),
  };
  const blockOf = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const b = index.get(r.block)!;
    blockOf[i] = b;
    s.n[b]!++;
    s.ups[b]! += r.y;
    if ((r.p >= 0.5 ? 1 : 0) === r.y) s.correct[b]!++;
    s.squared[b]! += (r.p - r.y) ** 2;
    if (r.covered !== null) {
      s.covN[b]!++;
      if (r.covered) s.covHit[b]!++;
    }
    const bin = b * bins + Math.min(bins - 1, Math.floor(r.p * bins));
    s.binN[bin]!++;
    s.binP[bin]! += r.p;
    s.binY[bin]! += r.y;
    if (r.y === 1) s.pos[b]!++;
    else s.neg[b]!++;
  }
  // Ascending p; within a run of equal p, down-rows below count whole, down-rows in the run count ½.
  // Typed copies: the comparator sort over object properties was most of the cost at 46k rows.
  const pOf = Float64Array.from(rows, (r) => r.p);
  const up = Uint8Array.from(rows, (r) => (r.y === 1 ? 1 : 0));
  const order = Uint32Array.from(rows.keys()).sort((i, j) => pOf[i]! - pOf[j]!);
  const negBelow = new Float64Array(B);
  const negTied = new Float64Array(B);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end < order.length && pOf[order[end]!] === pOf[order[start]!]) end++;
    for (let k = start; k < end; k++) if (!up[order[k]!]) negTied[blockOf[order[k]!]!]!++;
    for (let k = start; k < end; k++) {
      if (!up[order[k]!]) continue;
      const row = blockOf[order[k]!]! * B;
      for (let c = 0; c < B; c++) s.concordant[row + c]! += negBelow[c]! + 0.5 * negTied[c]!;
    }
    // Move this run's down-rows below, and leave negTied all zeros again (touching only what was set).
    for (let k = start; k < end; k++) {
      const b = blockOf[order[k]!]!;
      negBelow[b]! += negTied[b]!;
      negTied[b] = 0;
    }
    start = end;
  }
  return s;
}

/** Every metric of the sample made of block b repeated weights[b] times. */
function measure(s: BlockStats, w: Float64Array, reference: number | null, bins: number): Record<MetricName, number | null> {
  const B = s.blocks;
  let n = 0;
  let ups = 0;
  let correct = 0;
  let squared = 0;
  let covN = 0;
  let covHit = 0;
  let pos = 0;
  let neg = 0;
  let concordant = 0;
  const binN = new Float64Array(bins);
  const binP = new Float64Array(bins);
  const binY = new Float64Array(bins);
  for (let b = 0; b < B; b++) {
    const wb = w[b]!;
    if (wb === 0) continue;
    n += wb * s.n[b]!;
    ups += wb * s.ups[b]!;
    correct += wb * s.correct[b]!;
    squared += wb * s.squared[b]!;
    covN += wb * s.covN[b]!;
    covHit += wb * s.covHit[b]!;
    pos += wb * s.pos[b]!;
    neg += wb * s.neg[b]!;
    for (let k = 0; k < bins; k++) {
      binN[k]! += wb * s.binN[b * bins + k]!;
      binP[k]! += wb * s.binP[b * bins + k]!;
      binY[k]! += wb * s.binY[b * bins + k]!;
    }
    let pairs = 0;
    for (let c = 0; c < B; c++) pairs += w[c]! * s.concordant[b * B + c]!;
    concordant += wb * pairs;
  }
  const brier = squared / n;
  const baseRate = ups / n;
  const hindsight = baseRate * (1 - baseRate);
  // Σ (r − y)² = n r² − 2 r Σy + Σy, as y² = y.
  const referenceBrier = reference === null ? null : (n * reference * reference - 2 * reference * ups + ups) / n;
  const accuracy = correct / n;
  let ece = 0;
  for (let k = 0; k < bins; k++) ece += Math.abs(binP[k]! - binY[k]!);
  return {
    accuracy,
    accuracyOverBaseline: reference === null ? null : accuracy - (reference >= 0.5 ? baseRate : 1 - baseRate),
    brierSkillVsTrainingBaseRate: referenceBrier !== null && referenceBrier > 0 ? 1 - brier / referenceBrier : null,
    brierSkillVsHindsightBaseRate: hindsight > 0 ? 1 - brier / hindsight : null,
    auc: pos > 0 && neg > 0 ? concordant / (pos * neg) : null,
    ece: ece / n,
    intervalCoverage: covN > 0 ? covHit / covN : null,
  };
}
