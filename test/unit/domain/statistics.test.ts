import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  auc,
  blockBootstrap,
  brierSkill,
  clusteredCounts,
  clusteredProportion,
  monthBlock,
  normalQuantile,
  percentile,
  seededRandom,
  verdictOf,
  type ScoredOutcome,
} from '../../../src/domain/statistics.js';
import { naiveBootstrap, naiveMetrics } from '../../helpers/naive-metrics.js';

/** Rows over a few months; p from a coarse grid so ties (which AUC counts ½) are common. */
const rowArb = fc.record({
  block: fc.integer({ min: 0, max: 7 }),
  p: fc.oneof(
    fc.integer({ min: 0, max: 20 }).map((k) => k / 20),
    fc.double({ min: 0, max: 1, noNaN: true }),
  ),
  y: fc.integer({ min: 0, max: 1 }),
  covered: fc.option(fc.boolean(), { nil: null }),
});
const rowsArb = fc.array(rowArb, { minLength: 1, maxLength: 60 });
const referenceArb = fc.option(fc.double({ min: 0.05, max: 0.95, noNaN: true }), { nil: null });

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

describe('block bootstrap', () => {
  test('every interval contains its value, at the stated level, for any rows', () => {
    fc.assert(
      fc.property(rowsArb, referenceArb, fc.integer({ min: 1, max: 2 ** 31 }), (rows, reference, seed) => {
        const result = blockBootstrap(rows, reference, { replicates: 50, seed, level: 0.9 });
        assert.equal(result.seed, seed);
        assert.equal(result.blocks, new Set(rows.map((r) => r.block)).size);
        for (const e of result.estimates) {
          assert.ok(e.low <= e.value && e.value <= e.high, `${e.metric}: ${e.value} outside [${e.low}, ${e.high}]`);
          assert.equal(e.level, 0.9);
          assert.ok(Number.isFinite(e.low) && Number.isFinite(e.high));
        }
      }),
      { numRuns: 200 },
    );
  });

  test('identical inputs and seed give identical output; row order does not matter', () => {
    fc.assert(
      fc.property(rowsArb, referenceArb, fc.integer({ min: 1, max: 1000 }), (rows, reference, seed) => {
        const a = blockBootstrap(rows, reference, { replicates: 40, seed });
        const b = blockBootstrap(
          rows.map((r) => ({ ...r })),
          reference,
          { replicates: 40, seed },
        );
        assert.deepEqual(a, b);
        // Reversed rows: the same blocks are drawn, so the same intervals up to summation order.
        const c = blockBootstrap([...rows].reverse(), reference, { replicates: 40, seed });
        assert.deepEqual(
          c.estimates.map((e) => e.metric),
          a.estimates.map((e) => e.metric),
        );
        c.estimates.forEach((e, i) => {
          close(e.low, a.estimates[i]!.low, `${e.metric} low`);
          close(e.high, a.estimates[i]!.high, `${e.metric} high`);
        });
      }),
      { numRuns: 100 },
    );
  });

  test('equals a naive bootstrap that copies whole months row by row', () => {
    fc.assert(
      fc.property(rowsArb, referenceArb, fc.integer({ min: 1, max: 1000 }), (rows, reference, seed) => {
        const got = blockBootstrap(rows, reference, { replicates: 30, seed, level: 0.8 });
        const want = naiveBootstrap(rows, reference, 30, seed, 0.8);
        assert.deepEqual(got.estimates.map((e) => e.metric).sort(), Object.keys(want).sort());
        for (const e of got.estimates) {
          const w = want[e.metric]!;
          close(e.value, w.value, `${e.metric} value`);
          close(e.low, w.low, `${e.metric} low`);
          close(e.high, w.high, `${e.metric} high`);
        }
      }),
      { numRuns: 60 },
    );
  });

  test('resamples whole months: with one month, every replicate is that month and every interval is its value', () => {
    fc.assert(
      fc.property(rowsArb, referenceArb, (rows, reference) => {
        const oneMonth = rows.map((r) => ({ ...r, block: 42 }));
        for (const e of blockBootstrap(oneMonth, reference, { replicates: 25 }).estimates) {
          assert.equal(e.low, e.value, e.metric);
          assert.equal(e.high, e.value, e.metric);
        }
      }),
    );
    // The same rows split into single-row blocks do vary: it is the blocking that pins them.
    const rows: ScoredOutcome[] = Array.from({ length: 40 }, (_, i) => ({
      block: i,
      p: (i % 7) / 7,
      y: i % 3 === 0 ? 1 : 0,
      covered: i % 2 === 0,
    }));
    const accuracy = blockBootstrap(rows, 0.5, { replicates: 200 }).estimates.find((e) => e.metric === 'accuracy')!;
    assert.ok(accuracy.high - accuracy.low > 0.05, JSON.stringify(accuracy));
  });

  test('a month whose rows are all correct and one all wrong: intervals come from mixing whole months only', () => {
    const rows: ScoredOutcome[] = [
      ...Array.from({ length: 10 }, () => ({ block: monthBlock(Date.UTC(2020, 2, 5)), p: 0.7, y: 1, covered: true })),
      ...Array.from({ length: 10 }, () => ({ block: monthBlock(Date.UTC(2020, 3, 5)), p: 0.7, y: 0, covered: false })),
    ];
    const draws = blockBootstrap(rows, 0.5, { replicates: 500, level: 0.5 }).estimates.find((e) => e.metric === 'accuracy')!;
    // Two blocks of 10: a replicate's accuracy is 0, 0.5 or 1 — never anything a row-level draw would give.
    for (const bound of [draws.low, draws.high]) assert.ok([0, 0.5, 1].includes(bound), `bound ${bound}`);
  });

  test('the point values equal the textbook metrics', () => {
    const oneBlock = blockBootstrap(
      [
        { block: 0, p: 0.6, y: 1, covered: true },
        { block: 0, p: 0.2, y: 0, covered: false },
      ],
      0.5,
      { replicates: 1 },
    );
    assert.equal(oneBlock.estimates.length, 7);
    fc.assert(
      fc.property(rowsArb, referenceArb, (rows, reference) => {
        const want = naiveMetrics(rows, reference);
        const got = blockBootstrap(rows, reference, { replicates: 1 });
        for (const [metric, value] of Object.entries(want)) {
          const e = got.estimates.find((x) => x.metric === metric);
          if (value === null) assert.equal(e, undefined, metric);
          // Present unless no replicate could measure it (a resample without an up-row has no AUC).
          else if (e) close(e.value, value, metric);
        }
      }),
    );
  });

  test('verdict follows the Brier-skill interval', () => {
    fc.assert(
      fc.property(rowsArb, fc.double({ min: 0.05, max: 0.95, noNaN: true }), (rows, reference) => {
        const result = blockBootstrap(rows, reference, { replicates: 40 });
        const skill = result.estimates.find((e) => e.metric === 'brierSkillVsTrainingBaseRate');
        if (!skill) return assert.equal(result.verdict, null);
        assert.equal(
          result.verdict,
          skill.low > 0 ? 'BETTER_THAN_BASE_RATE' : skill.high < 0 ? 'WORSE_THAN_BASE_RATE' : 'NO_BETTER_THAN_BASE_RATE',
        );
      }),
    );
    assert.equal(blockBootstrap([], 0.5).verdict, null);
    assert.deepEqual(blockBootstrap([], 0.5).estimates, []);
    assert.equal(verdictOf({ low: 0, high: 0.1 }), 'NO_BETTER_THAN_BASE_RATE');
    assert.equal(verdictOf({ low: -0.1, high: -1e-9 }), 'WORSE_THAN_BASE_RATE');
  });

  test('without a training base rate, the metrics that need one and the verdict are absent', () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ block: i % 4, p: 0.3 + (i % 5) / 10, y: i % 2, covered: null }));
    const result = blockBootstrap(rows, null, { replicates: 20 });
    assert.deepEqual(
      result.estimates.map((e) => e.metric),
      ['accuracy', 'brierSkillVsHindsightBaseRate', 'auc', 'ece'],
    );
    assert.equal(result.verdict, null);
  });

  test('refuses nonsense options', () => {
    assert.throws(() => blockBootstrap([], 0.5, { replicates: 0 }), /replicates/);
    assert.throws(() => blockBootstrap([], 0.5, { level: 1 }), /level/);
  });
});

describe('AUC, Brier skill, percentile, months', () => {
  test('AUC equals the Mann-Whitney statistic counted pair by pair', () => {
    fc.assert(
      fc.property(rowsArb, (rows) => {
        const want = naiveMetrics(rows, null).auc ?? null;
        const got = auc(
          rows.map((r) => r.p),
          rows.map((r) => r.y),
        );
        if (want === null) assert.equal(got, null);
        else close(got!, want, 'auc');
      }),
      { numRuns: 300 },
    );
  });

  test('Brier skill against a constant', () => {
    assert.equal(brierSkill([0.5, 0.5], [1, 0], 0.5), 0);
    close(brierSkill([0.9, 0.1], [1, 0], 0.5)!, 1 - 0.01 / 0.25, 'skill');
    assert.equal(brierSkill([0.9], [1], 1), null);
  });

  test('percentile interpolates between order statistics (type 7)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((v) => v + 0),
          { minLength: 1, maxLength: 50 },
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const sorted = Float64Array.from(values).sort();
          const v = percentile(sorted, q);
          assert.ok(v >= sorted[0]! && v <= sorted.at(-1)!);
          assert.equal(percentile(sorted, 0), sorted[0]);
          assert.equal(percentile(sorted, 1), sorted.at(-1));
        },
      ),
    );
    assert.equal(percentile([1, 2, 3, 4], 0.5), 2.5);
    assert.throws(() => percentile([], 0.5));
  });

  test('month blocks are UTC calendar months', () => {
    assert.equal(monthBlock(Date.UTC(2020, 2, 1)), monthBlock(Date.UTC(2020, 2, 31, 23, 59)));
    assert.notEqual(monthBlock(Date.UTC(2020, 2, 31, 23, 59)), monthBlock(Date.UTC(2020, 3, 1)));
    assert.equal(monthBlock(Date.UTC(2021, 0, 1)) - monthBlock(Date.UTC(2020, 11, 1)), 1);
    assert.equal(monthBlock(new Date(Date.UTC(2020, 5, 1))), monthBlock(Date.UTC(2020, 5, 1)));
  });

  test('the PRNG is seeded: same seed, same stream; values in [0, 1)', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b()),
    );
    assert.notDeepEqual(
      xs.slice(0, 10),
      Array.from({ length: 10 }, () => c()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });
});

describe('day-clustered proportion', () => {
  test('contains its value, stays in [0, 1], never narrower than the binomial interval', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1, maxLength: 40 }),
        (days) => {
          const counts = clusteredCounts(days.map(([rows, share]) => ({ rows, hits: Math.round(rows * share) })));
          const r = clusteredProportion(counts)!;
          assert.ok(r.low <= r.value && r.value <= r.high && r.low >= 0 && r.high <= 1, JSON.stringify(r));
          const p = counts.hits / counts.rows;
          const binomialHalf = 1.959963984540054 * Math.sqrt((p * (1 - p)) / counts.rows);
          assert.ok(r.high - r.low >= Math.min(1, p + binomialHalf) - Math.max(0, p - binomialHalf) - 1e-12);
        },
      ),
    );
    assert.equal(clusteredProportion(clusteredCounts([])), null);
  });

  test('hits bunched on a few days widen the interval against the same hits spread out', () => {
    // 20 days × 10 rows, 100 hits: all on 10 days vs 5 on every day.
    const bunched = clusteredProportion(clusteredCounts(Array.from({ length: 20 }, (_, d) => ({ rows: 10, hits: d < 10 ? 10 : 0 }))))!;
    const spread = clusteredProportion(clusteredCounts(Array.from({ length: 20 }, () => ({ rows: 10, hits: 5 }))))!;
    assert.equal(bunched.value, 0.5);
    assert.equal(spread.value, 0.5);
    assert.ok(bunched.high - bunched.low > 2 * (spread.high - spread.low), `${JSON.stringify(bunched)} vs ${JSON.stringify(spread)}`);
    // Bunched: variance = 20/19 · Σ (h_d − 5)² / 200² = 20/19 · 500 / 40000.
    close(bunched.high - 0.5, 1.959963984540054 * Math.sqrt(((20 / 19) * 500) / 40_000), 'half-width');
  });

  test('the normal quantile', () => {
    close(normalQuantile(0.975), 1.959963984540054, 'z 0.975');
    close(normalQuantile(0.5), 0, 'z 0.5');
    assert.ok(Math.abs(normalQuantile(0.001) + 3.090232306167813) < 1e-8);
    assert.throws(() => normalQuantile(1));
  });
});
