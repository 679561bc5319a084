import { FEATURE_STATS_QUANTILES, type FeatureStats } from '../domain/manifest.js';

/**
 * Mean, standard deviation and quantiles of each feature over `rows` of a row-major sample matrix:
 * the training rows, so the gateway's explanations compare a prediction against the inputs the model
 * learned from. Quantiles are the nearest-rank ⌈q·n⌉-th smallest value (no interpolation), so every
 * reported value is one the data actually held.
 */
export function featureStats(
  x: Float64Array,
  rows: Uint32Array,
  names: readonly string[],
  period: { from: string; to: string },
): FeatureStats {
  const F = names.length;
  const n = rows.length;
  if (n === 0) throw new Error('featureStats needs at least one row');
  const column = new Float64Array(n);
  const features: FeatureStats['features'] = {};
  names.forEach((name, j) => {
    let sum = 0;
    for (let k = 0; k < n; k++) sum += column[k] = x[rows[k]! * F + j]!;
    const mean = sum / n;
    let squares = 0;
    for (let k = 0; k < n; k++) squares += (column[k]! - mean) ** 2;
    const sorted = column.slice().sort();
    const quantiles: Record<string, number> = {};
    for (const q of FEATURE_STATS_QUANTILES) quantiles[String(q)] = sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
    features[name] = { mean, std: n > 1 ? Math.sqrt(squares / (n - 1)) : 0, quantiles };
  });
  return { period, samples: n, features };
}
