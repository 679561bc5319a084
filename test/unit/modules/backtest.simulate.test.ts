import assert from 'node:assert/strict';
import { test } from 'node:test';
import { performance, positionsOf, simulate, type Rule } from '../../../src/modules/backtest/index.js';
import type { Signal } from '../../../src/domain/signal.js';

const t = (d: number) => new Date(Date.UTC(2020, 0, d));
const s = (symbol: string, signal: Signal, probability: number, nextReturn: number) => ({ symbol, signal, probability, nextReturn });

/** Two days, three symbols: small enough that every figure below is worked out by hand. */
const DAYS = [
  { time: t(1), symbols: [s('A', 'BUY', 0.6, 0.02), s('B', 'SELL', 0.4, -0.01), s('C', 'HOLD', 0.51, 0.03)] },
  { time: t(2), symbols: [s('A', 'BUY', 0.7, -0.01), s('B', 'BUY', 0.55, 0.04), s('C', 'SELL', 0.3, 0.01)] },
];

test('rules: LONG_SHORT longs BUY and shorts SELL, LONG_ONLY longs BUY, TOP_BOTTOM_QUANTILE ranks by probability', () => {
  const day = DAYS[0]!.symbols;
  assert.deepEqual(
    [...positionsOf('LONG_SHORT', day, 0.2)],
    [
      ['A', 1],
      ['B', -1],
    ],
  );
  assert.deepEqual([...positionsOf('LONG_ONLY', day, 0.2)], [['A', 1]]);
  assert.deepEqual(
    [...positionsOf('TOP_BOTTOM_QUANTILE', day, 0.34)],
    [
      ['A', 1],
      ['B', -1],
    ],
  );
  assert.deepEqual([...positionsOf('TOP_BOTTOM_QUANTILE', day, 0.2)], [], 'floor(3 × 0.2) = 0 symbols: no position');
  // Ties are broken by symbol, whatever the input order.
  const tied = [s('Z', 'HOLD', 0.5, 0), s('Y', 'HOLD', 0.5, 0), s('X', 'HOLD', 0.5, 0), s('W', 'HOLD', 0.5, 0)];
  assert.deepEqual(
    [...positionsOf('TOP_BOTTOM_QUANTILE', tied, 0.25)],
    [
      ['W', 1],
      ['Z', -1],
    ],
  );
});

test('LONG_SHORT without costs: the mean over positions of position × return, equity compounding from 1', () => {
  const { strategy, curve } = simulate(DAYS, { rule: 'LONG_SHORT', costBps: 0, quantile: 0.2 });
  const r1 = (0.02 + 0.01) / 2; // long A +2%, short B −1%
  const r2 = (-0.01 + 0.04 - 0.01) / 3; // long A, long B, short C
  assert.deepEqual(
    curve.map((p) => p.dailyReturn),
    [r1, r2],
  );
  assert.equal(strategy.finalEquity, (1 + r1) * (1 + r2));
  assert.equal(strategy.days, 2);
  assert.equal(strategy.hitRate, 3 / 5); // A+, B+ on day 1; A−, B+, C− on day 2
  assert.equal(strategy.exposure, (2 / 3 + 3 / 3) / 2);
});

test('costs: costBps × turnover each day, turnover Σ|Δweight| starting from cash', () => {
  const { strategy, curve } = simulate(DAYS, { rule: 'LONG_SHORT', costBps: 10, quantile: 0.2 });
  // Day 1 from cash: A +1/2, B −1/2 → 1. Day 2: A 1/2→1/3, B −1/2→+1/3, C 0→−1/3 → 1/6 + 5/6 + 1/3 = 4/3.
  const turnovers = [1, 4 / 3];
  curve.forEach((p, i) => assert.ok(Math.abs(p.turnover - turnovers[i]!) < 1e-15));
  const gross = [(0.02 + 0.01) / 2, (-0.01 + 0.04 - 0.01) / 3];
  curve.forEach((p, i) => assert.ok(Math.abs(p.dailyReturn - (gross[i]! - 0.001 * turnovers[i]!)) < 1e-15));
  assert.ok(Math.abs(strategy.costsPaid - 0.001 * (1 + 4 / 3)) < 1e-15);
  assert.ok(Math.abs(strategy.turnover - (1 + 4 / 3) / 2) < 1e-15);
});

test('a day with no position returns 0 and pays for closing what was held', () => {
  const days = [
    { time: t(1), symbols: [s('A', 'BUY', 0.6, 0.02)] },
    { time: t(2), symbols: [s('A', 'HOLD', 0.51, 0.05)] },
  ];
  const { curve } = simulate(days, { rule: 'LONG_ONLY', costBps: 100, quantile: 0.2 });
  assert.deepEqual(
    curve.map((p) => p.turnover),
    [1, 1],
  );
  assert.ok(Math.abs(curve[1]!.dailyReturn - -0.01) < 1e-15);
});

test('benchmark: every eligible symbol equal-weight, no costs, whatever the rule', () => {
  for (const rule of ['LONG_SHORT', 'LONG_ONLY', 'TOP_BOTTOM_QUANTILE'] as Rule[]) {
    const { benchmark, curve } = simulate(DAYS, { rule, costBps: 50, quantile: 0.34 });
    assert.deepEqual(
      curve.map((p) => p.benchmarkReturn),
      [(0.02 - 0.01 + 0.03) / 3, (-0.01 + 0.04 + 0.01) / 3],
    );
    assert.equal(benchmark.costsPaid, 0);
  }
});

test('performance: the issue definitions, recomputed plainly', () => {
  const returns = [0.01, -0.02, 0.03, -0.01, 0.005];
  const p = performance(returns);
  let equity = 1;
  let peak = 1;
  let maxDrawdown = 0;
  for (const r of returns) {
    equity *= 1 + r;
    peak = Math.max(peak, equity);
    maxDrawdown = Math.max(maxDrawdown, 1 - equity / peak);
  }
  const mean = returns.reduce((a, b) => a + b) / returns.length;
  const sd = Math.sqrt(returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (returns.length - 1));
  assert.ok(Math.abs(p.finalEquity - equity) < 1e-15);
  assert.ok(Math.abs(p.annualReturn! - (equity ** (252 / 5) - 1)) < 1e-12);
  assert.ok(Math.abs(p.volatility! - sd * Math.sqrt(252)) < 1e-15);
  assert.ok(Math.abs(p.sharpe! - (mean / sd) * Math.sqrt(252)) < 1e-12);
  assert.ok(Math.abs(p.maxDrawdown - maxDrawdown) < 1e-15);
  assert.equal(performance([0.01]).sharpe, null, 'one return has no sample sd');
  assert.equal(performance([0, 0, 0]).sharpe, null, 'zero sd: no sharpe');
});
