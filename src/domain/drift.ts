import { FEATURE_STATS_QUANTILES, type DriftReference, type FeatureStats, type ReferenceHistogram } from './manifest.js';

/**
 * Distribution drift of one variable against a reference histogram: the Population Stability Index and
 * the Kolmogorov-Smirnov distance, both measured on the reference's bins (docs/decisions/drift.md).
 *
 * A reference is `k − 1` ascending cut points and `k` proportions: bin 0 is (−∞, edges[0]], bin i is
 * (edges[i−1], edges[i]], bin k−1 is (edges[k−2], ∞). Right-closed bins, so a nearest-rank quantile
 * (the ⌈q·n⌉-th smallest value, which the manifest's featureStats hold) ends exactly the bin holding
 * the lowest q of the rows.
 *
 * ```ts
 * const ref = { edges: [0], proportions: [0.5, 0.5] };
 * psi(ref, [1, 2, 3, -1]);   // recent 0.25 | 0.75: (0.25−0.5)·ln(0.25/0.5) + (0.75−0.5)·ln(0.75/0.5) ≈ 0.2747
 * ks(ref, [1, 2, 3, -1]);    // |0.5 − 0.25| = 0.25
 * ```
 */

/** PSI above this: the variable has drifted (the credit-scoring convention PSI was made for). */
export const PSI_DRIFTED = 0.25;
/** PSI above this (and at most {@link PSI_DRIFTED}): worth watching. */
export const PSI_WATCH = 0.1;
/**
 * An empty bin on either side would make PSI infinite; proportions are floored at this before the sum
 * (a bin the recent data never visits still counts, as about ln(p/1e-4)·p).
 */
export const PSI_FLOOR = 1e-4;
/** Equal-frequency bins in a reference written by training (featureStats quantiles give 10). */
export const REFERENCE_BINS = 20;

export type DriftStatus = 'STABLE' | 'WATCH' | 'DRIFTED';

export function driftStatus(psiValue: number): DriftStatus {
  return psiValue > PSI_DRIFTED ? 'DRIFTED' : psiValue > PSI_WATCH ? 'WATCH' : 'STABLE';
}

/** Share of `values` in each bin of `edges` (right-closed); non-finite values are left out. */
export function binProportions(edges: readonly number[], values: ArrayLike<number>): { proportions: number[]; count: number } {
  const counts = new Array<number>(edges.length + 1).fill(0);
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    counts[binIndex(edges, v)]!++;
    count++;
  }
  return { proportions: counts.map((c) => (count ? c / count : 0)), count };
}

/** PSI = Σ (recent − reference) · ln(recent / reference) over the bins, both floored at {@link PSI_FLOOR}. */
export function psiOf(reference: readonly number[], recent: readonly number[]): number {
  if (reference.length !== recent.length)
    throw new RangeError(`psi needs as many recent bins as reference bins (${reference.length}); got ${recent.length}`);
  let sum = 0;
  for (let i = 0; i < reference.length; i++) {
    const e = Math.max(reference[i]!, PSI_FLOOR);
    const a = Math.max(recent[i]!, PSI_FLOOR);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** Largest gap between the two cumulative distributions at the bins' upper edges. */
export function ksOf(reference: readonly number[], recent: readonly number[]): number {
  if (reference.length !== recent.length)
    throw new RangeError(`ks needs as many recent bins as reference bins (${reference.length}); got ${recent.length}`);
  let e = 0;
  let a = 0;
  let max = 0;
  for (let i = 0; i < reference.length - 1; i++) {
    e += reference[i]!;
    a += recent[i]!;
    max = Math.max(max, Math.abs(e - a));
  }
  return max;
}

export function psi(reference: ReferenceHistogram, values: ArrayLike<number>): number {
  return psiOf(reference.proportions, binProportions(reference.edges, values).proportions);
}

export function ks(reference: ReferenceHistogram, values: ArrayLike<number>): number {
  return ksOf(reference.proportions, binProportions(reference.edges, values).proportions);
}

/**
 * A reference of `bins` equal-frequency bins over `values`: cut points at the nearest-rank quantiles
 * j/bins, proportions counted (ties can make them unequal; they are exact for these values).
 * Repeated cut points (a variable with a mass point) are merged, so no bin is empty by construction.
 */
export function histogramOf(values: ArrayLike<number>, bins: number = REFERENCE_BINS): ReferenceHistogram {
  const sorted = Float64Array.from(values).filter(Number.isFinite).sort();
  const n = sorted.length;
  if (n === 0) throw new RangeError('a reference histogram needs at least one finite value');
  const edges: number[] = [];
  for (let j = 1; j < bins; j++) {
    const edge = sorted[Math.min(n - 1, Math.max(0, Math.ceil((j * n) / bins) - 1))]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  // The top cut point equal to the maximum would leave the last bin empty.
  while (edges.length > 0 && edges[edges.length - 1]! >= sorted[n - 1]!) edges.pop();
  return { edges, proportions: binProportions(edges, sorted).proportions };
}

/** Per feature (training rows) and for the calibrated probability, as training writes it into the manifest. */
export function driftReferenceOf(
  x: Float64Array,
  rows: Uint32Array,
  names: readonly string[],
  probabilities: ArrayLike<number>,
  period: { from: string; to: string },
): DriftReference {
  const F = names.length;
  const column = new Float64Array(rows.length);
  const features: Record<string, ReferenceHistogram> = {};
  names.forEach((name, j) => {
    for (let k = 0; k < rows.length; k++) column[k] = x[rows[k]! * F + j]!;
    features[name] = histogramOf(column);
  });
  return { period, samples: rows.length, bins: REFERENCE_BINS, features, probability: histogramOf(probabilities) };
}

/**
 * The coarser reference a manifest without `driftReference` still implies: its featureStats quantiles
 * are nearest-rank cut points, so the shares between consecutive levels are the proportions
 * (0.01, 0.04, 0.05, 0.15, 0.25, 0.25, 0.15, 0.05, 0.04, 0.01 for the standard levels). Exact up to
 * ties at a cut point; 10 bins instead of 20, so PSI reads somewhat lower and KS is only seen at 9 points.
 * Undefined when the quantiles descend or every one is a mass point.
 */
export function histogramFromQuantiles(stats: FeatureStats['features'][string]): ReferenceHistogram | undefined {
  const levels = FEATURE_STATS_QUANTILES.filter((q) => stats.quantiles[String(q)] !== undefined);
  const values = levels.map((q) => stats.quantiles[String(q)]!);
  if (values.some((v, i) => i > 0 && v < values[i - 1]!)) return undefined;
  // A value held at several levels is a mass point (range_pos_20 is 0 up to its 10% level and 1 from
  // its 90%): the share at or below it is only known to lie between levels, so it is no cut point; the
  // bins either side merge, and their share (between the neighbouring distinct levels) stays exact.
  const kept = levels.filter((_, i) => values[i] !== values[i - 1] && values[i] !== values[i + 1]);
  if (kept.length < 1) return undefined;
  const edges = kept.map((q) => stats.quantiles[String(q)]!);
  const proportions = [...kept, 1].map((q, i) => q - (i === 0 ? 0 : kept[i - 1]!));
  return { edges, proportions };
}

function binIndex(edges: readonly number[], v: number): number {
  // First edge ≥ v (right-closed bins), by binary search.
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
