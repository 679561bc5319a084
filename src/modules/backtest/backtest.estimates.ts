import { BOOTSTRAP_BLOCK, DEFAULT_REPLICATES, monthBlock, resampleBlocks, type ResampledEstimate } from '../../domain/statistics.js';
import { MIN_ESTIMATE_BLOCKS } from '../metrics/index.js';
import { performance, type CurvePoint } from './backtest.simulate.js';

/** The figures given an interval, on both sides; `excessAnnualReturn` (strategy − benchmark) on the strategy's side only. */
export const ESTIMATED_FIGURES = ['annualReturn', 'volatility', 'sharpe', 'maxDrawdown', 'hitRate'] as const;
export const EXCESS_FIGURE = 'excessAnnualReturn';
export type BacktestFigure = (typeof ESTIMATED_FIGURES)[number] | typeof EXCESS_FIGURE;

export const BACKTEST_BOOTSTRAP_METHOD =
  'calendar-block percentile bootstrap: whole UTC months of decision days drawn with replacement and concatenated in draw order ' +
  '(strategy and benchmark from the same draw, so excessAnnualReturn is paired); the percentile interval, widened to the point value where it excludes it';

export interface BacktestEstimates {
  readonly strategy: Array<ResampledEstimate<BacktestFigure>>;
  readonly benchmark: Array<ResampledEstimate<BacktestFigure>>;
  /** How they were made; null when there are none (see `note`). */
  readonly estimation: {
    readonly method: string;
    readonly block: string;
    readonly blocks: number;
    readonly replicates: number;
    readonly seed: number;
    readonly level: number;
  } | null;
  /** Why there are none, or why a figure is missing; null when nothing is. */
  readonly note: string | null;
}

const SIDES = ['strategy', 'benchmark'] as const;
type Keyed = `${(typeof SIDES)[number]}.${BacktestFigure}`;

/**
 * Intervals for a backtest's figures by the same calendar-block bootstrap as model metrics
 * (domain/statistics.ts `resampleBlocks`, month blocks, the same seed): a replicate is the decision
 * days of as many months as the backtest spans, drawn with replacement, their daily returns
 * concatenated in draw order; every figure is then recomputed by the backtest's own definitions
 * (`performance`), so the point value is the figure served, bit for bit. Path figures (maxDrawdown)
 * see a re-ordered history: within-month paths are kept, across months they are not, so their
 * percentile interval can miss the served value and is then widened to it (`widened`).
 */
export function estimateBacktest(
  curve: readonly CurvePoint[],
  options: { replicates?: number; seed?: number; level?: number } = {},
): BacktestEstimates {
  // Decision days come in time order, so a month's days are contiguous.
  const starts: number[] = [];
  curve.forEach((p, i) => {
    if (i === 0 || monthBlock(p.time) !== monthBlock(curve[i - 1]!.time)) starts.push(i);
  });
  starts.push(curve.length);
  const months = starts.length - 1;
  if (months < MIN_ESTIMATE_BLOCKS)
    return {
      strategy: [],
      benchmark: [],
      estimation: null,
      note: `the decision days span ${months} calendar month(s); intervals need at least ${MIN_ESTIMATE_BLOCKS}`,
    };

  const names: Keyed[] = [...SIDES.flatMap((side) => ESTIMATED_FIGURES.map((f): Keyed => `${side}.${f}`)), `strategy.${EXCESS_FIGURE}`];
  const statistic = (drawn: Uint32Array): Record<Keyed, number | null> => {
    const strategyReturns: number[] = [];
    const benchmarkReturns: number[] = [];
    let hits = 0;
    let held = 0;
    let up = 0;
    let eligible = 0;
    for (const b of drawn)
      for (let i = starts[b]!; i < starts[b + 1]!; i++) {
        const p = curve[i]!;
        strategyReturns.push(p.dailyReturn);
        benchmarkReturns.push(p.benchmarkReturn);
        hits += p.hits;
        held += p.positions;
        up += p.eligibleUp;
        eligible += p.eligible;
      }
    const s = performance(strategyReturns);
    const m = performance(benchmarkReturns);
    return {
      'strategy.annualReturn': s.annualReturn,
      'strategy.volatility': s.volatility,
      'strategy.sharpe': s.sharpe,
      'strategy.maxDrawdown': s.maxDrawdown,
      'strategy.hitRate': held > 0 ? hits / held : null,
      'strategy.excessAnnualReturn': s.annualReturn === null || m.annualReturn === null ? null : s.annualReturn - m.annualReturn,
      'benchmark.annualReturn': m.annualReturn,
      'benchmark.volatility': m.volatility,
      'benchmark.sharpe': m.sharpe,
      'benchmark.maxDrawdown': m.maxDrawdown,
      'benchmark.hitRate': eligible > 0 ? up / eligible : null,
      'benchmark.excessAnnualReturn': null,
    };
  };
  const result = resampleBlocks(months, names, { ...options, replicates: options.replicates ?? DEFAULT_REPLICATES }, statistic);
  const side = (name: (typeof SIDES)[number]) =>
    result.estimates
      .filter((e) => e.metric.startsWith(`${name}.`))
      .map((e) => ({ ...e, metric: e.metric.slice(name.length + 1) as BacktestFigure }));
  const strategy = side('strategy');
  const benchmark = side('benchmark');
  const missing = [
    ...[...ESTIMATED_FIGURES, EXCESS_FIGURE].filter((f) => !strategy.some((e) => e.metric === f)).map((f) => `strategy ${f}`),
    ...ESTIMATED_FIGURES.filter((f) => !benchmark.some((e) => e.metric === f)).map((f) => `benchmark ${f}`),
  ];
  return {
    strategy,
    benchmark,
    estimation: {
      method: BACKTEST_BOOTSTRAP_METHOD,
      block: BOOTSTRAP_BLOCK,
      blocks: result.blocks,
      replicates: result.replicates,
      seed: result.seed,
      level: result.level,
    },
    note: missing.length ? `missing: ${missing.join(', ')}: undefined on these days (e.g. no position held, or a constant return)` : null,
  };
}
