import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../src/domain/statistics.js';
import { estimateBacktest, simulate, type Rule } from '../../../src/modules/backtest/index.js';
import type { Signal } from '../../../src/domain/signal.js';

/** `months` months of 21 trading days, four symbols, random signals and returns (a crash in month 3). */
function curveOf(seed: number, months: number, rule: Rule) {
  const random = seededRandom(seed);
  const days = [];
  for (let m = 0; m < months; m++)
    for (let d = 1; d <= 21; d++) {
      const scale = m === 2 ? 0.06 : 0.015;
      days.push({
        time: new Date(Date.UTC(2020, m, d)),
        symbols: ['A', 'B', 'C', 'D'].map((symbol) => {
          const probability = random();
          const signal: Signal = probability > 0.55 ? 'BUY' : probability < 0.45 ? 'SELL' : 'HOLD';
          return { symbol, probability, signal, nextReturn: (random() - 0.52) * scale };
        }),
      });
    }
  return simulate(days, { rule, costBps: 5, quantile: 0.25 });
}

test('every interval contains its value, on both sides, for any curve', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const simulation = curveOf(seed, 6 + (seed % 7), (['LONG_SHORT', 'LONG_ONLY', 'TOP_BOTTOM_QUANTILE'] as const)[seed % 3]!);
    const { strategy, benchmark, note } = estimateBacktest(simulation.curve, { replicates: 200 });
    assert.equal(note, null);
    assert.equal(strategy.length, 6);
    assert.equal(benchmark.length, 5);
    for (const e of [...strategy, ...benchmark]) {
      assert.ok(e.low <= e.value && e.value <= e.high, `seed ${seed} ${e.metric}: ${e.value} outside [${e.low}, ${e.high}]`);
    }
    // The point values are the figures simulate() served, bit for bit (hit rates from the per-day counts).
    for (const e of strategy)
      if (e.metric !== 'excessAnnualReturn') assert.equal(e.value, simulation.strategy[e.metric], `seed ${seed} ${e.metric}`);
    for (const e of benchmark) if (e.metric !== 'excessAnnualReturn') assert.equal(e.value, simulation.benchmark[e.metric]);
  }
});

test('the same curve and seed give the same intervals; another seed other ones', () => {
  const { curve } = curveOf(7, 9, 'LONG_SHORT');
  assert.deepEqual(estimateBacktest(curve, { replicates: 100 }), estimateBacktest(curve, { replicates: 100 }));
  const a = estimateBacktest(curve, { replicates: 100 }).strategy;
  const b = estimateBacktest(curve, { replicates: 100, seed: 1 }).strategy;
  assert.notDeepEqual(
    a.map((e) => e.low),
    b.map((e) => e.low),
  );
});

test('one month resampled: every replicate is that month, so with 6 identical months every interval is its value', () => {
  // Six months with the same 21 returns in the same order: any draw of 6 of them is the same path.
  const month = curveOf(3, 1, 'LONG_SHORT').curve;
  const curve = Array.from({ length: 6 }, (_, m) =>
    month.map((p) => ({ ...p, time: new Date(Date.UTC(2021, m, p.time.getUTCDate())) })),
  ).flat();
  const { strategy, benchmark } = estimateBacktest(curve, { replicates: 50 });
  for (const e of [...strategy, ...benchmark]) {
    assert.ok(Math.abs(e.high - e.low) <= 1e-12 * Math.max(1, Math.abs(e.value)), `${e.metric}: [${e.low}, ${e.high}]`);
    assert.equal(e.widened, false);
  }
});

test('fewer than 6 months: no intervals, and the answer says why; no position held: no hit rate interval, named', () => {
  const short = estimateBacktest(curveOf(2, 5, 'LONG_SHORT').curve);
  assert.deepEqual([short.strategy, short.benchmark, short.estimation], [[], [], null]);
  assert.match(short.note ?? '', /span 5 calendar month\(s\); intervals need at least 6/);
  const idle = curveOf(2, 6, 'LONG_SHORT').curve.map((p) => ({ ...p, positions: 0, hits: 0 }));
  const none = estimateBacktest(idle, { replicates: 50 });
  assert.equal(
    none.strategy.some((e) => e.metric === 'hitRate'),
    false,
  );
  assert.match(none.note ?? '', /missing: strategy hitRate/);
  assert.equal(none.estimation?.blocks, 6);
});
