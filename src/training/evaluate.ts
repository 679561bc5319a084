import { clusteredCounts, clusteredProportion } from '../domain/statistics.js';

/**
 * Metrics of probabilistic binary predictions, computed the textbook way. The same definitions are used
 * for the manifests' offline metrics and (in SQL) for live model metrics, so the two are comparable.
 */
export interface CalibrationBin {
  lower: number;
  upper: number;
  count: number;
  meanPredicted: number | null;
  observedRate: number | null;
  days?: number;
  observedRateLow?: number;
  observedRateHigh?: number;
}

export interface BinaryMetrics {
  sampleSize: number;
  baseRate: number;
  accuracy: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  brier: number;
  logLoss: number;
  ece: number;
  calibration: CalibrationBin[];
}

const EPS = 1e-15;

/** `threshold` decides the predicted class for accuracy/precision/recall (probability ≥ threshold → 1). */
export function binaryMetrics(p: ArrayLike<number>, y: ArrayLike<number>, threshold = 0.5, bins = 10): BinaryMetrics {
  const n = p.length;
  if (n === 0 || y.length !== n) throw new Error(`binaryMetrics: need equal, non-empty inputs (got ${n} predictions, ${y.length} labels)`);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let correct = 0;
  let positives = 0;
  let brier = 0;
  let logLoss = 0;
  for (let i = 0; i < n; i++) {
    const pi = p[i]!;
    const yi = y[i]!;
    const predicted = pi >= threshold ? 1 : 0;
    if (predicted === yi) correct++;
    if (predicted === 1 && yi === 1) tp++;
    if (predicted === 1 && yi === 0) fp++;
    if (predicted === 0 && yi === 1) fn++;
    positives += yi;
    brier += (pi - yi) ** 2;
    const clipped = Math.min(Math.max(pi, EPS), 1 - EPS);
    logLoss -= yi * Math.log(clipped) + (1 - yi) * Math.log(1 - clipped);
  }
  const precision = tp + fp > 0 ? tp / (tp + fp) : null;
  const recall = tp + fn > 0 ? tp / (tp + fn) : null;
  const f1 = precision !== null && recall !== null && precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : null;
  const calibration = calibrationBins(p, y, bins);
  return {
    sampleSize: n,
    baseRate: positives / n,
    accuracy: correct / n,
    precision,
    recall,
    f1,
    brier: brier / n,
    logLoss: logLoss / n,
    ece: expectedCalibrationError(calibration, n),
    calibration,
  };
}

/** Equal-width bins over [0, 1]; the last bin includes 1. */
export function calibrationBins(p: ArrayLike<number>, y: ArrayLike<number>, bins = 10): CalibrationBin[] {
  const count = new Array<number>(bins).fill(0);
  const sumP = new Array<number>(bins).fill(0);
  const sumY = new Array<number>(bins).fill(0);
  for (let i = 0; i < p.length; i++) {
    const b = Math.min(bins - 1, Math.floor(p[i]! * bins));
    count[b]!++;
    sumP[b]! += p[i]!;
    sumY[b]! += y[i]!;
  }
  return count.map((c, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: c,
    meanPredicted: c ? sumP[b]! / c : null,
    observedRate: c ? sumY[b]! / c : null,
  }));
}

/** ECE: the count-weighted mean gap between predicted and observed rates across bins. */
export function expectedCalibrationError(bins: readonly CalibrationBin[], n: number): number {
  return bins.reduce((sum, b) => (b.count ? sum + (b.count / n) * Math.abs(b.meanPredicted! - b.observedRate!) : sum), 0);
}

/**
 * The bins again, each with the distinct UTC days (of asOf) behind it and a 95% interval of its observed
 * rate that counts days, not rows, as the units of evidence (rows of one day move together).
 */
export function calibrationEvidence(
  bins: readonly CalibrationBin[],
  p: ArrayLike<number>,
  y: ArrayLike<number>,
  time: ArrayLike<number>,
): CalibrationBin[] {
  const perBin = bins.map(() => new Map<number, { rows: number; hits: number }>());
  for (let i = 0; i < p.length; i++) {
    const b = Math.min(bins.length - 1, Math.floor(p[i]! * bins.length));
    const day = Math.floor(time[i]! / 86_400_000);
    const entry = perBin[b]!.get(day);
    if (entry) {
      entry.rows++;
      entry.hits += y[i]!;
    } else perBin[b]!.set(day, { rows: 1, hits: y[i]! });
  }
  return bins.map((bin, b) => {
    const interval = clusteredProportion(clusteredCounts([...perBin[b]!.values()]));
    return interval
      ? { ...bin, days: perBin[b]!.size, observedRateLow: interval.low, observedRateHigh: interval.high }
      : { ...bin, days: 0 };
  });
}
