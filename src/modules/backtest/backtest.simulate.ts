import type { Signal } from '../../domain/signal.js';

/**
 * The backtest's arithmetic, pure and small enough to recompute by hand (docs/decisions/backtest.md).
 *
 * Each decision day t is a trading day in [from, to] whose next trading day t+1 is also in it, so
 * every return is realized inside the period. On day t a symbol is eligible when it has a bar at t
 * and at t+1 and a prediction made from bars ≤ t. Its return is adjClose(t+1) / adjClose(t) − 1.
 *
 * - Positions: +1 (long), −1 (short) or 0 by the rule; weights are position / number of positions
 *   held that day (equal weight), so the gross return is the mean over positions of position × return.
 * - Turnover on day t is Σ |w(t) − w(t−1)| over symbols (the first day starts from cash); the day's
 *   return is gross − costBps / 10 000 × turnover. A day with no position returns 0 (cash).
 * - Benchmark: the eligible symbols equal-weight, rebalanced daily, no costs.
 * - Equity starts at 1 and compounds the daily returns; metrics as in {@link performance}.
 */
export const BACKTEST_DEFINITIONS =
  'Decision days: trading days t in [from, to] whose next trading day t+1 is also in it. Eligible: symbols with bars at t and t+1 and ' +
  'a prediction from bars ≤ t. return_i = adjClose_i(t+1)/adjClose_i(t) − 1. Positions +1/−1/0 by the rule, weight = position / ' +
  'positions held. Daily return = mean over positions of position × return_i − costBps/10000 × turnover, turnover = Σ|w(t) − w(t−1)| ' +
  '(first day from cash); no position = 0. Equity starts at 1. annualReturn = equity_end^(252/N) − 1; volatility = sample sd × √252; ' +
  'sharpe = mean/sd × √252; maxDrawdown = max 1 − equity_t/running max. Benchmark: eligible symbols equal-weight, daily, no costs.';

export const RULES = ['LONG_SHORT', 'LONG_ONLY', 'TOP_BOTTOM_QUANTILE'] as const;
export type Rule = (typeof RULES)[number];

/** What one symbol looked like on one decision day. */
export interface SymbolDay {
  readonly symbol: string;
  readonly probability: number;
  readonly signal: Signal;
  /** adjClose(t+1) / adjClose(t) − 1. */
  readonly nextReturn: number;
}

export interface DayInput {
  readonly time: Date;
  readonly symbols: readonly SymbolDay[];
}

export interface SimulationOptions {
  readonly rule: Rule;
  readonly costBps: number;
  /** TOP_BOTTOM_QUANTILE: the share of symbols held long (top) and short (bottom) each day. */
  readonly quantile: number;
}

export interface CurvePoint {
  readonly time: Date;
  readonly dailyReturn: number;
  readonly equity: number;
  readonly drawdown: number;
  readonly benchmarkReturn: number;
  readonly benchmarkEquity: number;
  readonly benchmarkDrawdown: number;
  readonly positions: number;
  readonly turnover: number;
  /** Positions with position × return > 0 (the hit rate's numerator for the day). */
  readonly hits: number;
  /** Eligible symbols, and how many of them rose: the benchmark's hit rate for the day. */
  readonly eligible: number;
  readonly eligibleUp: number;
}

export interface Performance {
  readonly days: number;
  readonly finalEquity: number;
  readonly totalReturn: number;
  readonly annualReturn: number | null;
  readonly volatility: number | null;
  readonly sharpe: number | null;
  readonly maxDrawdown: number;
  /** Share of positions (symbol-days held) whose position × return > 0; null with none. */
  readonly hitRate: number | null;
  /** Mean daily Σ |Δweight|. */
  readonly turnover: number;
  /** Σ over days of costBps / 10 000 × turnover (in return units, not compounded). */
  readonly costsPaid: number;
  /** Mean over days of positions held / eligible symbols. */
  readonly exposure: number;
}

export interface Simulation {
  readonly strategy: Performance;
  readonly benchmark: Performance;
  readonly curve: CurvePoint[];
}

/** Positions (+1, −1 or 0) the rule takes on one day, by symbol. */
export function positionsOf(rule: Rule, symbols: readonly SymbolDay[], quantile: number): Map<string, number> {
  const positions = new Map<string, number>();
  if (rule === 'LONG_SHORT') {
    for (const s of symbols) if (s.signal !== 'HOLD') positions.set(s.symbol, s.signal === 'BUY' ? 1 : -1);
  } else if (rule === 'LONG_ONLY') {
    for (const s of symbols) if (s.signal === 'BUY') positions.set(s.symbol, 1);
  } else {
    const count = Math.floor(symbols.length * quantile);
    if (count >= 1 && 2 * count <= symbols.length) {
      // Ties broken by symbol so the answer never depends on input order.
      const ranked = [...symbols].sort((a, b) => b.probability - a.probability || (a.symbol < b.symbol ? -1 : 1));
      for (const s of ranked.slice(0, count)) positions.set(s.symbol, 1);
      for (const s of ranked.slice(-count)) positions.set(s.symbol, -1);
    }
  }
  return positions;
}

export function simulate(days: readonly DayInput[], options: SimulationOptions): Simulation {
  const cost = options.costBps / 10_000;
  let previous = new Map<string, number>();
  const strategyReturns: number[] = [];
  const benchmarkReturns: number[] = [];
  const turnovers: number[] = [];
  const exposures: number[] = [];
  const positionCounts: number[] = [];
  const hitCounts: number[] = [];
  let hits = 0;
  let held = 0;
  for (const day of days) {
    const hitsBefore = hits;
    const positions = positionsOf(options.rule, day.symbols, options.quantile);
    const weights = new Map<string, number>();
    for (const [symbol, position] of positions) weights.set(symbol, position / positions.size);
    let turnover = 0;
    for (const [symbol, w] of weights) turnover += Math.abs(w - (previous.get(symbol) ?? 0));
    for (const [symbol, w] of previous) if (!weights.has(symbol)) turnover += Math.abs(w);
    let gross = 0;
    let benchmark = 0;
    for (const s of day.symbols) {
      benchmark += s.nextReturn;
      const position = positions.get(s.symbol);
      if (position === undefined) continue;
      gross += position * s.nextReturn;
      held++;
      if (position * s.nextReturn > 0) hits++;
    }
    strategyReturns.push((positions.size > 0 ? gross / positions.size : 0) - cost * turnover);
    benchmarkReturns.push(day.symbols.length > 0 ? benchmark / day.symbols.length : 0);
    turnovers.push(turnover);
    exposures.push(day.symbols.length > 0 ? positions.size / day.symbols.length : 0);
    positionCounts.push(positions.size);
    hitCounts.push(hits - hitsBefore);
    previous = weights;
  }
  const equity = compound(strategyReturns);
  const benchmarkEquity = compound(benchmarkReturns);
  const curve = days.map((day, i) => ({
    time: day.time,
    dailyReturn: strategyReturns[i]!,
    equity: equity.equity[i]!,
    drawdown: equity.drawdown[i]!,
    benchmarkReturn: benchmarkReturns[i]!,
    benchmarkEquity: benchmarkEquity.equity[i]!,
    benchmarkDrawdown: benchmarkEquity.drawdown[i]!,
    positions: positionCounts[i]!,
    turnover: turnovers[i]!,
    hits: hitCounts[i]!,
    eligible: day.symbols.length,
    eligibleUp: day.symbols.filter((s) => s.nextReturn > 0).length,
  }));
  const totalTurnover = turnovers.reduce((s, t) => s + t, 0);
  return {
    strategy: {
      ...performance(strategyReturns),
      hitRate: held > 0 ? hits / held : null,
      turnover: days.length > 0 ? totalTurnover / days.length : 0,
      costsPaid: cost * totalTurnover,
      exposure: mean(exposures) ?? 0,
    },
    benchmark: {
      ...performance(benchmarkReturns),
      hitRate: hitRateOfBenchmark(days),
      turnover: 0,
      costsPaid: 0,
      exposure: days.length > 0 ? 1 : 0,
    },
    curve,
  };
}

/**
 * The definitions of issue 19 over N daily returns: equity starts at 1; annualReturn =
 * equity_end^(252/N) − 1; volatility = sample sd × √252; sharpe = mean / sd × √252; maxDrawdown =
 * max of 1 − equity_t / running max (the running max starts at the initial 1).
 */
export function performance(returns: readonly number[]): Omit<Performance, 'hitRate' | 'turnover' | 'costsPaid' | 'exposure'> {
  const n = returns.length;
  const { equity, drawdown } = compound(returns);
  const finalEquity = equity.at(-1) ?? 1;
  const average = mean(returns);
  const sd = sampleSd(returns);
  return {
    days: n,
    finalEquity,
    totalReturn: finalEquity - 1,
    annualReturn: n > 0 ? finalEquity ** (252 / n) - 1 : null,
    volatility: sd === null ? null : sd * Math.sqrt(252),
    sharpe: sd === null || sd === 0 || average === null ? null : (average / sd) * Math.sqrt(252),
    maxDrawdown: drawdown.reduce((m, d) => Math.max(m, d), 0),
  };
}

function compound(returns: readonly number[]): { equity: number[]; drawdown: number[] } {
  const equity: number[] = [];
  const drawdown: number[] = [];
  let value = 1;
  let peak = 1;
  for (const r of returns) {
    value *= 1 + r;
    peak = Math.max(peak, value);
    equity.push(value);
    drawdown.push(1 - value / peak);
  }
  return { equity, drawdown };
}

function hitRateOfBenchmark(days: readonly DayInput[]): number | null {
  let up = 0;
  let count = 0;
  for (const day of days)
    for (const s of day.symbols) {
      count++;
      if (s.nextReturn > 0) up++;
    }
  return count > 0 ? up / count : null;
}

function mean(values: readonly number[]): number | null {
  return values.length > 0 ? values.reduce((s, v) => s + v, 0) / values.length : null;
}

function sampleSd(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values)!;
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}
