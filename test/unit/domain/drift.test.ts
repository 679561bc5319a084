import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  PSI_FLOOR,
  binProportions,
  driftStatus,
  histogramFromQuantiles,
  histogramOf,
  ks,
  ksOf,
  psi,
  psiOf,
} from '../../../src/domain/drift.js';
import { FEATURE_STATS_QUANTILES, referenceHistogramSchema } from '../../../src/domain/manifest.js';

const close = (actual: number, expected: number, tolerance = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);

describe('PSI and KS against hand-computed values', () => {
  test('two bins: reference 50/50, recent 25/75', () => {
    const reference = { edges: [0], proportions: [0.5, 0.5] };
    // (0.25 − 0.5)·ln(0.25/0.5) + (0.75 − 0.5)·ln(0.75/0.5) = 0.25·ln 2 + 0.25·ln 1.5
    close(psi(reference, [1, 2, 3, -1]), 0.25 * Math.log(2) + 0.25 * Math.log(1.5));
    close(psi(reference, [1, 2, 3, -1]), 0.27465307216702745);
    close(ks(reference, [1, 2, 3, -1]), 0.25);
  });

  test('four bins: the textbook example', () => {
    // reference 10/40/40/10, recent 20/30/30/20:
    // 2·(0.1·ln 2) + 2·(−0.1·ln(0.75)) = 0.2·ln 2 − 0.2·ln 0.75 = 0.19616…
    const value = psiOf([0.1, 0.4, 0.4, 0.1], [0.2, 0.3, 0.3, 0.2]);
    close(value, 0.2 * Math.log(2) - 0.2 * Math.log(0.75));
    close(value, 0.196165850602345);
    // cumulative 0.1/0.5/0.9 vs 0.2/0.5/0.8: largest gap 0.1
    close(ksOf([0.1, 0.4, 0.4, 0.1], [0.2, 0.3, 0.3, 0.2]), 0.1);
    assert.equal(driftStatus(value), 'WATCH');
  });

  test('identical distributions: zero; an empty recent bin is floored, not infinite', () => {
    assert.equal(psiOf([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), 0);
    assert.equal(ksOf([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), 0);
    // recent all in the last bin: (1e-4 − 0.5)·ln(1e-4/0.5) + (1 − 0.5)·ln(1/0.5)
    const value = psiOf([0.5, 0.5], [0, 1]);
    close(value, (PSI_FLOOR - 0.5) * Math.log(PSI_FLOOR / 0.5) + 0.5 * Math.log(2));
    assert.ok(Number.isFinite(value));
    assert.equal(ksOf([0.5, 0.5], [0, 1]), 0.5);
  });

  test('bins are right-closed and non-finite values are left out', () => {
    const { proportions, count } = binProportions([0, 1], [-1, 0, 0.5, 1, 1.5, Number.NaN, Infinity]);
    assert.equal(count, 5);
    assert.deepEqual(proportions, [2 / 5, 2 / 5, 1 / 5]);
  });

  test('mismatched bins are refused', () => {
    assert.throws(() => psiOf([0.5, 0.5], [1]), RangeError);
    assert.throws(() => ksOf([0.5, 0.5], [1]), RangeError);
  });

  test('status thresholds: 0.1 and 0.25 are the upper ends of STABLE and WATCH', () => {
    assert.equal(driftStatus(0), 'STABLE');
    assert.equal(driftStatus(0.1), 'STABLE');
    assert.equal(driftStatus(0.1000001), 'WATCH');
    assert.equal(driftStatus(0.25), 'WATCH');
    assert.equal(driftStatus(0.2500001), 'DRIFTED');
  });
});

describe('reference histograms', () => {
  test('equal-frequency bins over 1..100 hold 5% each', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    const h = histogramOf(values, 20);
    assert.deepEqual(h.edges, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95]);
    for (const p of h.proportions) close(p, 0.05);
    assert.equal(psi(h, values), 0);
    referenceHistogramSchema.parse(h);
  });

  test('a mass point merges cut points instead of leaving empty bins', () => {
    const h = histogramOf([...Array<number>(90).fill(0), ...Array.from({ length: 10 }, (_, i) => i + 1)], 10);
    assert.deepEqual(h.edges, [0]);
    assert.deepEqual(h.proportions, [0.9, 0.1]);
    assert.deepEqual(histogramOf([3, 3, 3]), { edges: [], proportions: [1] });
    assert.throws(() => histogramOf([Number.NaN]), RangeError);
  });

  test('featureStats quantiles imply 10 bins of known shares', () => {
    const quantiles = Object.fromEntries(FEATURE_STATS_QUANTILES.map((q, i) => [String(q), i]));
    const h = histogramFromQuantiles({ mean: 0, std: 1, quantiles })!;
    assert.deepEqual(h.edges, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    [0.01, 0.04, 0.05, 0.15, 0.25, 0.25, 0.15, 0.05, 0.04, 0.01].forEach((p, i) => close(h.proportions[i]!, p));
    referenceHistogramSchema.parse(h);
    // Descending: no histogram rather than a wrong one.
    assert.equal(histogramFromQuantiles({ mean: 0, std: 0, quantiles: { ...quantiles, '0.9': 0 } }), undefined);
    // Mass points at 0 up to the 5% level and at 8 from the 95% level (as range_pos_20 has at 0 and 1):
    // no cut at either; the bins beside them merge, with the exact shares between distinct levels.
    const massed = histogramFromQuantiles({
      mean: 0.5,
      std: 0.3,
      quantiles: { ...quantiles, '0.01': 0, '0.05': 0, '0.95': 8, '0.99': 8 },
    })!;
    assert.deepEqual(massed.edges, [2, 3, 4, 5, 6]);
    [0.1, 0.15, 0.25, 0.25, 0.15, 0.1].forEach((p, i) => close(massed.proportions[i]!, p));
    referenceHistogramSchema.parse(massed);
  });
});

describe('properties', () => {
  const sample = fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 300 });

  test('PSI and KS are ≥ 0, KS ≤ 1, and both 0 for the reference sample itself', () => {
    fc.assert(
      fc.property(sample, sample, fc.integer({ min: 2, max: 30 }), (reference, recent, bins) => {
        const h = histogramOf(reference, bins);
        assert.ok(psi(h, recent) >= 0);
        const d = ks(h, recent);
        assert.ok(d >= 0 && d <= 1 + 1e-12);
        assert.ok(psi(h, reference) < 1e-12);
        assert.ok(ks(h, reference) < 1e-12);
        close(
          h.proportions.reduce((a, b) => a + b, 0),
          1,
          1e-9,
        );
      }),
    );
  });

  test('KS on the bins never exceeds the exact two-sample KS distance', () => {
    fc.assert(
      fc.property(sample, sample, (reference, recent) => {
        const exact = Math.max(...[...reference, ...recent].map((v) => Math.abs(cdf(reference, v) - cdf(recent, v))));
        assert.ok(ks(histogramOf(reference, 10), recent) <= exact + 1e-12);
      }),
    );
  });
});

function cdf(values: readonly number[], at: number): number {
  return values.filter((v) => v <= at).length / values.length;
}
