/**
 * Deliberately naive recomputations of the metric estimates of src/domain/statistics.ts, for
 * tests: rows are materialized per replicate (whole blocks copied), AUC is counted pair by pair, nothing
 * is decomposed. Slow (O(rows²) per replicate) and obviously right, which is the point.
 */
import { seededRandom } from '../../src/domain/statistics.js';

/** Type-7 percentile, written out again: h = (n − 1)q, interpolate between the neighbours. */
function percentile(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  return sorted[Math.floor(h)]! + (h - Math.floor(h)) * (sorted[Math.ceil(h)]! - sorted[Math.floor(h)]!);
}

export interface NaiveRow {
  block: number;
  p: number;
  y: number;
  covered: boolean | null;
}

export function naiveMetrics(rows: readonly NaiveRow[], reference: number | null): Record<string, number | null> {
  const n = rows.length;
  const mean = (f: (r: NaiveRow) => number) => rows.reduce((a, r) => a + f(r), 0) / n;
  const accuracy = mean((r) => ((r.p >= 0.5 ? 1 : 0) === r.y ? 1 : 0));
  const brier = mean((r) => (r.p - r.y) ** 2);
  const base = mean((r) => r.y);
  const hindsight = mean((r) => (base - r.y) ** 2);
  const refBrier = reference === null ? null : mean((r) => (reference - r.y) ** 2);
  let pairs = 0;
  let wins = 0;
  for (const a of rows) {
    if (a.y !== 1) continue;
    for (const b of rows) {
      if (b.y === 1) continue;
      pairs++;
      wins += a.p > b.p ? 1 : a.p === b.p ? 0.5 : 0;
    }
  }
  let ece = 0;
  for (let k = 0; k < 10; k++) {
    const inBin = rows.filter((r) => Math.min(9, Math.floor(r.p * 10)) === k);
    if (inBin.length)
      ece +=
        (inBin.length / n) *
        Math.abs(inBin.reduce((a, r) => a + r.p, 0) / inBin.length - inBin.reduce((a, r) => a + r.y, 0) / inBin.length);
  }
  const withInterval = rows.filter((r) => r.covered !== null);
  return {
    accuracy,
    accuracyOverBaseline: reference === null ? null : accuracy - (reference >= 0.5 ? base : 1 - base),
    brierSkillVsTrainingBaseRate: refBrier === null || refBrier === 0 ? null : 1 - brier / refBrier,
    brierSkillVsHindsightBaseRate: hindsight === 0 ? null : 1 - brier / hindsight,
    auc: pairs ? wins / pairs : null,
    ece,
    intervalCoverage: withInterval.length ? withInterval.filter((r) => r.covered).length / withInterval.length : null,
  };
}

/** The block bootstrap done the long way: draw block keys with the same seeded PRNG, copy their rows, measure. */
export function naiveBootstrap(rows: readonly NaiveRow[], reference: number | null, replicates: number, seed: number, level: number) {
  const keys = [...new Set(rows.map((r) => r.block))].sort((a, b) => a - b);
  const byBlock = new Map(keys.map((k) => [k, rows.filter((r) => r.block === k)]));
  const random = seededRandom(seed);
  const draws: Record<string, number[]> = {};
  for (let i = 0; i < replicates; i++) {
    const sample: NaiveRow[] = [];
    for (let k = 0; k < keys.length; k++) sample.push(...byBlock.get(keys[Math.floor(random() * keys.length)]!)!);
    for (const [metric, value] of Object.entries(naiveMetrics(sample, reference))) {
      if (value !== null && Number.isFinite(value)) (draws[metric] ??= []).push(value);
    }
  }
  const point = naiveMetrics(rows, reference);
  const alpha = (1 - level) / 2;
  const out: Record<string, { value: number; low: number; high: number }> = {};
  for (const [metric, value] of Object.entries(point)) {
    const d = draws[metric];
    if (value === null || !d?.length) continue;
    d.sort((a, b) => a - b);
    out[metric] = { value, low: Math.min(value, percentile(d, alpha)), high: Math.max(value, percentile(d, 1 - alpha)) };
  }
  return out;
}
