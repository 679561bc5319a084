import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  compareDailyLosses,
  comparisonLag,
  dailyLosses,
  neweyWestVariance,
  normalCdf,
  POWER_80_Z,
  type DailyLoss,
  type PairedLoss,
} from '../../../src/domain/comparison.js';
import { seededRandom } from '../../../src/domain/statistics.js';

const close = (a: number | null | undefined, b: number, what: string, tol = 1e-9) =>
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

const DAY = 86_400_000;
const dayOf = (i: number) => new Date(Date.UTC(2021, 0, 4) + i * DAY).toISOString().slice(0, 10);

/** The test's own Newey–West: the sum over all pairs |s − t| ≤ L of the Bartlett-weighted cross products. */
function naiveLrv(x: number[], lag: number): number {
  const T = x.length;
  const m = x.reduce((s, v) => s + v, 0) / T;
  let v = 0;
  for (let s = 0; s < T; s++)
    for (let t = 0; t < T; t++) {
      const k = Math.abs(s - t);
      if (k <= lag) v += (1 - k / (lag + 1)) * (x[s]! - m) * (x[t]! - m);
    }
  return v / T;
}

/** The test's own month-block bootstrap of the mean of daily differences (same documented PRNG and seed). */
function naiveInterval(days: DailyLoss[], seed: number, replicates: number, level: number): [number, number] {
  const months = new Map<string, number[]>();
  for (const d of days) months.set(d.day.slice(0, 7), [...(months.get(d.day.slice(0, 7)) ?? []), d.meanA - d.meanB]);
  const groups = [...months.keys()].sort().map((k) => months.get(k)!);
  const random = seededRandom(seed);
  const stats: number[] = [];
  for (let r = 0; r < replicates; r++) {
    const drawn: number[] = [];
    for (let k = 0; k < groups.length; k++) drawn.push(...groups[Math.floor(random() * groups.length)]!);
    stats.push(drawn.reduce((s, v) => s + v, 0) / drawn.length);
  }
  stats.sort((a, b) => a - b);
  const q = (p: number) => {
    const h = (stats.length - 1) * p;
    const lo = Math.floor(h);
    return stats[lo]! + (h - lo) * (stats[Math.min(stats.length - 1, lo + 1)]! - stats[lo]!);
  };
  return [q((1 - level) / 2), q(1 - (1 - level) / 2)];
}

/** T days of 4 symbols; model A's loss is B's minus `edge` plus noise, so A is better when edge > 0. */
function pairedRows(T: number, edge: number, seed: number): PairedLoss[] {
  const random = seededRandom(seed);
  const rows: PairedLoss[] = [];
  for (let t = 0; t < T; t++)
    for (let s = 0; s < 4; s++) {
      const lossB = 0.2 + 0.1 * random();
      rows.push({ day: dayOf(t), lossA: lossB - edge + 0.05 * (random() - 0.5), lossB });
    }
  return rows;
}

describe('model comparison (Diebold–Mariano, block bootstrap, power)', () => {
  test('Newey–West by hand: 1,2,3,4 at lag 1 is γ0 + γ1 = 1.25 + 0.3125', () => {
    close(neweyWestVariance([1, 2, 3, 4], 1), 1.5625, 'LRV');
    close(neweyWestVariance([1, 2, 3, 4], 0), 1.25, 'lag 0 is the variance with divisor T');
  });

  test('Newey–West equals an independent double-sum implementation for any series and lag', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 2, maxLength: 40 }),
        fc.integer({ min: 0, max: 8 }),
        (x, lag) => {
          close(neweyWestVariance(x, Math.min(lag, x.length - 1)), naiveLrv(x, Math.min(lag, x.length - 1)), 'LRV', 1e-9);
        },
      ),
    );
  });

  test('normal CDF at known values', () => {
    close(normalCdf(0), 0.5, 'Φ(0)', 1e-7);
    close(normalCdf(1.959963984540054), 0.975, 'Φ(1.96)', 2e-7);
    close(normalCdf(-1), 0.15865525393145707, 'Φ(−1)', 2e-7);
    close(normalCdf(3), 0.9986501019683699, 'Φ(3)', 2e-7);
    close(POWER_80_Z, 1.959963984540054 + 0.8416212335729143, 'z_0.975 + z_0.8', 1e-8);
  });

  test('lag: max(h − 1, ⌊T^(1/3)⌋)', () => {
    assert.equal(comparisonLag(27, 1), 3);
    assert.equal(comparisonLag(26, 1), 2);
    assert.equal(comparisonLag(8, 5), 4);
    assert.equal(comparisonLag(0, 1), 0);
  });

  test('daily means of paired rows, in date order', () => {
    const days = dailyLosses([
      { day: '2021-02-02', lossA: 0.1, lossB: 0.3 },
      { day: '2021-02-01', lossA: 0.5, lossB: 0.2 },
      { day: '2021-02-02', lossA: 0.3, lossB: 0.1 },
    ]);
    assert.deepEqual(
      days.map((d) => [d.day, d.rows]),
      [
        ['2021-02-01', 1],
        ['2021-02-02', 2],
      ],
    );
    close(days[1]!.meanA, 0.2, 'meanA');
    close(days[1]!.meanB, 0.2, 'meanB');
  });

  test('every figure equals an independent recomputation: DM, p-value, interval, MDE, days still needed', () => {
    const days = dailyLosses(pairedRows(240, 0.004, 7));
    const result = compareDailyLosses(days, { horizonBars: 1, replicates: 300, seed: 42 });
    const d = days.map((x) => x.meanA - x.meanB);
    const T = d.length;
    const mean = d.reduce((s, v) => s + v, 0) / T;
    const lag = Math.floor(Math.cbrt(T));
    const lrv = naiveLrv(d, lag);
    const dm = mean / Math.sqrt(lrv / T);
    assert.equal(result.days, 240);
    assert.equal(result.rows, 960);
    assert.equal(result.lag, 6);
    close(result.meanDifference, mean, 'mean');
    close(result.longRunVariance, lrv, 'LRV');
    close(result.dmStatistic, dm, 'DM');
    close(result.pValue, 2 * (1 - normalCdf(Math.abs(dm))), 'p');
    close(result.mde80, (1.959963984540054 + 0.8416212335729143) * Math.sqrt(lrv / T), 'MDE', 1e-8);
    assert.equal(result.daysStillNeeded, Math.max(0, Math.ceil((lrv * POWER_80_Z ** 2) / mean ** 2 - T)));
    const [low, high] = naiveInterval(days, 42, 300, 0.95);
    close(result.interval!.low, Math.min(low, mean), 'low');
    close(result.interval!.high, Math.max(high, mean), 'high');
    assert.ok(mean < 0, 'A has the lower loss');
    assert.equal(result.verdict, 'A_BETTER');
    assert.equal(result.note, null);
  });

  test('swapping a and b negates the difference, the statistic and the interval; p-value, MDE and days needed stay', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.double({ min: -0.02, max: 0.02, noNaN: true }),
        fc.integer({ min: 1, max: 1e6 }),
        (T, edge, seed) => {
          const rows = pairedRows(T, edge, seed);
          const ab = compareDailyLosses(dailyLosses(rows), { horizonBars: 1, replicates: 50, seed });
          const ba = compareDailyLosses(dailyLosses(rows.map((r) => ({ day: r.day, lossA: r.lossB, lossB: r.lossA }))), {
            horizonBars: 1,
            replicates: 50,
            seed,
          });
          close(ba.meanDifference, -ab.meanDifference!, 'mean', 1e-9);
          assert.equal(ba.dmStatistic === null, ab.dmStatistic === null);
          if (ab.dmStatistic !== null) {
            close(ba.dmStatistic, -ab.dmStatistic, 'DM', 1e-6);
            close(ba.pValue, ab.pValue!, 'p', 1e-6);
          }
          close(ba.mde80, ab.mde80!, 'MDE', 1e-9);
          assert.equal(ba.interval === null, ab.interval === null);
          if (ab.interval) {
            close(ba.interval!.low, -ab.interval.high, 'low', 1e-9);
            close(ba.interval!.high, -ab.interval.low, 'high', 1e-9);
          }
          const swapped = { A_BETTER: 'B_BETTER', B_BETTER: 'A_BETTER', NO_DIFFERENCE_YET: 'NO_DIFFERENCE_YET' } as const;
          assert.equal(ba.verdict, swapped[ab.verdict]);
          assert.ok(ab.interval === null || (ab.interval.low <= ab.meanDifference! && ab.meanDifference! <= ab.interval.high));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('identical models: difference 0, interval [0, 0], no statistic, no verdict and no days-needed estimate, with reasons', () => {
    const rows = pairedRows(200, 0, 3).map((r) => ({ ...r, lossA: r.lossB }));
    const result = compareDailyLosses(dailyLosses(rows), { horizonBars: 1, replicates: 50 });
    assert.equal(result.meanDifference, 0);
    assert.deepEqual([result.interval!.low, result.interval!.high], [0, 0]);
    assert.equal(result.dmStatistic, null);
    assert.equal(result.pValue, null);
    assert.equal(result.mde80, 0);
    assert.equal(result.daysStillNeeded, null);
    assert.equal(result.verdict, 'NO_DIFFERENCE_YET');
    assert.match(result.note!, /observed difference is 0/);
  });

  test('thin evidence: under 20 days no verdict or days needed; under 6 months no interval; none at all is an answer', () => {
    const short = compareDailyLosses(dailyLosses(pairedRows(15, 0.05, 1)), { horizonBars: 1 });
    assert.ok(short.pValue! < 1e-6, 'a huge edge is significant even on 15 days');
    assert.equal(short.verdict, 'NO_DIFFERENCE_YET');
    assert.equal(short.daysStillNeeded, null);
    assert.equal(short.interval, null);
    assert.match(short.note!, /15 day\(s\).*at least 20/);
    assert.match(short.note!, /1 calendar month\(s\); an interval needs at least 6/);

    const none = compareDailyLosses([], { horizonBars: 5 });
    assert.deepEqual([none.days, none.rows, none.meanDifference, none.interval, none.verdict], [0, 0, null, null, 'NO_DIFFERENCE_YET']);
    assert.equal(none.lag, 4, 'a 5-bar horizon overlaps 4 following days');
  });

  test('a difference too small for the sample: no verdict, and the days still needed are positive', () => {
    const result = compareDailyLosses(dailyLosses(pairedRows(200, 0.0003, 5)), { horizonBars: 1, replicates: 200 });
    assert.equal(result.verdict, 'NO_DIFFERENCE_YET');
    assert.ok(result.daysStillNeeded! > 0, `${result.daysStillNeeded}`);
    assert.ok(Math.abs(result.meanDifference!) < result.mde80!, 'the observed difference is below the minimum detectable effect');
  });
});
