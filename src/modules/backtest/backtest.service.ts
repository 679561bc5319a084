import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { FEATURE_WINDOW, computeFeatures } from '../../domain/features.js';
import { signalOf } from '../../domain/signal.js';
import { findStrategy } from '../../domain/strategies.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import type { ModelRegistry, ModelVersionEntry } from '../models/index.js';
import { invalidFeatures, scoreOneRun } from '../predictions/index.js';
import { estimateBacktest, type BacktestEstimates } from './backtest.estimates.js';
import { simulate, type DayInput, type Rule, type Simulation, type SymbolDay } from './backtest.simulate.js';

export interface BacktestRequest {
  readonly strategy: string;
  /** Default: the strategy's active version. */
  readonly version?: string | undefined;
  readonly symbols: readonly string[];
  readonly from: Date;
  readonly to: Date;
  readonly rule: Rule;
  readonly costBps: number;
  /** TOP_BOTTOM_QUANTILE only; default 0.2. */
  readonly quantile?: number | undefined;
}

export interface BacktestResult extends Simulation {
  readonly strategyName: string;
  readonly version: string;
  readonly rule: Rule;
  readonly costBps: number;
  readonly quantile: number;
  readonly from: Date;
  readonly to: Date;
  readonly symbols: readonly string[];
  /** Rows predicted (symbol-days), in how many inference runs, and how long the runs took. */
  readonly predictions: number;
  readonly inferenceRuns: number;
  readonly inferenceMs: number;
  readonly elapsedMs: number;
  readonly warnings: readonly string[];
  /** Intervals of the strategy's and the benchmark's figures (backtest.estimates.ts). */
  readonly estimates: BacktestEstimates;
}

export interface BacktestProgress {
  readonly stage: 'features' | 'inference';
  readonly done: number;
  readonly total: number;
}

export interface BacktestLimits {
  /** Most symbols per backtest. */
  readonly maxSymbols: number;
  /** Longest [from, to], in calendar days. */
  readonly maxDays: number;
}

export const DEFAULT_BACKTEST_LIMITS: BacktestLimits = { maxSymbols: 100, maxDays: 3_700 };
export const DEFAULT_QUANTILE = 0.2;
export const MAX_COST_BPS = 1_000;
/** Rows per inference run: ~0.8 MB of input, a few ms of blocked event loop for the committed models. */
const ROWS_PER_RUN = 16_384;
const DAY_MS = 86_400_000;

export interface BacktestServiceOptions {
  readonly market: MarketDataProvider;
  readonly registry: ModelRegistry;
  readonly limits?: BacktestLimits;
  /** For tests; default: the clock. */
  readonly now?: () => Date;
  /** Bootstrap replicates behind `estimates` (default 1,000, as for model metrics). */
  readonly replicates?: number;
}

/**
 * Replays a model version over stored bars: on each trading day, every symbol's prediction from the
 * bars up to that day (no look-ahead), positions by the rule, and the next day's adjusted-close return
 * (definitions in backtest.simulate.ts). Features for all symbol-days are computed first, then scored
 * in a few large inference runs, which is what makes 61 symbols × 3 years take seconds.
 */
export class BacktestService {
  readonly limits: BacktestLimits;
  readonly #options: BacktestServiceOptions;

  constructor(options: BacktestServiceOptions) {
    this.#options = options;
    this.limits = options.limits ?? DEFAULT_BACKTEST_LIMITS;
  }

  /** The model version a request names (or the active one), after every argument is checked. */
  validate(request: BacktestRequest): ModelVersionEntry {
    const { registry } = this.#options;
    const { strategy, version, symbols, from, to, costBps } = request;
    if (!findStrategy(strategy) && registry.versionsOf(strategy).length === 0)
      throw codedError(
        ErrorCode.UNKNOWN_STRATEGY,
        `Unknown strategy "${strategy}"; known: ${registry.strategies().join(', ') || '(none loaded)'}`,
      );
    const entry = version === undefined ? registry.active(strategy) : registry.find(strategy, version);
    if (!entry) {
      if (version === undefined) throw codedError(ErrorCode.UNAVAILABLE, `No model version of "${strategy}" is loaded on this instance`);
      const known = registry.versionsOf(strategy).map((v) => v.manifest.version);
      throw badUserInput(`Unknown version "${version}" of ${strategy}; loaded: ${known.join(', ') || '(none)'}`, {
        strategy,
        version,
        known,
      });
    }
    if (symbols.length === 0) throw badUserInput('symbols: name at least one symbol');
    if (new Set(symbols).size !== symbols.length) throw badUserInput('symbols: each symbol at most once');
    if (symbols.length > this.limits.maxSymbols)
      throw badUserInput(`symbols: at most ${this.limits.maxSymbols} per backtest, got ${symbols.length}`, {
        limit: this.limits.maxSymbols,
      });
    if (!(from.getTime() < to.getTime())) throw badUserInput(`from (${iso(from)}) must be before to (${iso(to)})`);
    const now = this.#options.now?.() ?? new Date();
    if (to.getTime() > now.getTime()) throw badUserInput(`to (${iso(to)}) is in the future`);
    const span = Math.floor((to.getTime() - from.getTime()) / DAY_MS);
    if (span > this.limits.maxDays)
      throw badUserInput(`from..to spans ${span} days; at most ${this.limits.maxDays} per backtest`, { limit: this.limits.maxDays });
    if (!(costBps >= 0 && costBps <= MAX_COST_BPS)) throw badUserInput(`costBps must be within 0..${MAX_COST_BPS}, got ${costBps}`);
    const quantile = request.quantile ?? DEFAULT_QUANTILE;
    if (!(quantile > 0 && quantile <= 0.5)) throw badUserInput(`quantile must be in (0, 0.5], got ${quantile}`);
    if (request.rule === 'TOP_BOTTOM_QUANTILE' && Math.floor(symbols.length * quantile) < 1)
      throw badUserInput(`TOP_BOTTOM_QUANTILE with quantile ${quantile} needs at least ${Math.ceil(1 / quantile)} symbols`);
    return entry;
  }

  async run(request: BacktestRequest, onProgress?: (progress: BacktestProgress) => void): Promise<BacktestResult> {
    const started = performance.now();
    const model = this.validate(request);
    const { from, to, symbols } = request;
    const quantile = request.quantile ?? DEFAULT_QUANTILE;
    // Calendar days bound trading days from above: enough bars for the period plus a feature window before it.
    const lookback = Math.ceil((to.getTime() - from.getTime()) / DAY_MS) + 1 + FEATURE_WINDOW;
    const bars = await this.#options.market.fetchBars(symbols, { lookback, until: to });
    const unknown = symbols.filter((s) => (bars.get(s)?.length ?? 0) === 0);
    if (unknown.length)
      throw codedError(ErrorCode.UNKNOWN_SYMBOL, `no stored bars at or before ${iso(to)} for ${unknown.join(', ')}`, { symbols: unknown });

    // Every symbol-day in [from, to] with a whole feature window behind it.
    const rows: Array<{ symbol: string; index: number }> = [];
    const vectors: Float64Array[] = [];
    let invalid = 0;
    for (const [n, symbol] of symbols.entries()) {
      const list = bars.get(symbol)!;
      for (let i = FEATURE_WINDOW - 1; i < list.length; i++) {
        const time = list[i]!.time.getTime();
        if (time < from.getTime()) continue;
        const { values } = computeFeatures(list.slice(i + 1 - FEATURE_WINDOW, i + 1));
        if (invalidFeatures(Array.from(values))) {
          invalid++;
          continue;
        }
        rows.push({ symbol, index: i });
        vectors.push(values);
      }
      onProgress?.({ stage: 'features', done: n + 1, total: symbols.length });
    }

    const probabilities = new Float64Array(rows.length);
    let inferenceMs = 0;
    let inferenceRuns = 0;
    for (let start = 0; start < rows.length; start += ROWS_PER_RUN) {
      const chunk = vectors.slice(start, start + ROWS_PER_RUN);
      const runStarted = performance.now();
      probabilities.set(await scoreOneRun(model, chunk), start);
      inferenceMs += performance.now() - runStarted;
      inferenceRuns++;
      onProgress?.({ stage: 'inference', done: Math.min(start + ROWS_PER_RUN, rows.length), total: rows.length });
    }

    const days = decisionDays(bars, rows, probabilities, model, from, to);
    const simulation = simulate(days, { rule: request.rule, costBps: request.costBps, quantile });
    const estimates = estimateBacktest(simulation.curve, { replicates: this.#options.replicates });
    const warnings = [...trainingOverlap(model, from, to)];
    if (invalid > 0) warnings.push(`${invalid} symbol-day(s) had non-finite features and were left out`);
    const traded = new Set(days.flatMap((d) => d.symbols.map((s) => s.symbol)));
    const idle = symbols.filter((s) => !traded.has(s));
    if (idle.length)
      warnings.push(`no decision day for ${idle.join(', ')} (fewer than ${FEATURE_WINDOW} bars before to, or no bars in the period)`);
    return {
      ...simulation,
      strategyName: model.manifest.strategy,
      version: model.manifest.version,
      rule: request.rule,
      costBps: request.costBps,
      quantile,
      from,
      to,
      symbols,
      predictions: rows.length,
      inferenceRuns,
      inferenceMs,
      elapsedMs: performance.now() - started,
      warnings,
      estimates,
    };
  }
}

/**
 * Decision days: trading days t in [from, to] (the union of the symbols' bar dates) whose next trading
 * day is in it too; on each, the symbols with a bar at t and t+1 and a prediction at t.
 */
function decisionDays(
  bars: ReadonlyMap<string, readonly Bar[]>,
  rows: ReadonlyArray<{ symbol: string; index: number }>,
  probabilities: Float64Array,
  model: ModelVersionEntry,
  from: Date,
  to: Date,
): DayInput[] {
  const calendar = [
    ...new Set(
      [...bars.values()].flatMap((list) => list.map((b) => b.time.getTime()).filter((t) => t >= from.getTime() && t <= to.getTime())),
    ),
  ].sort((a, b) => a - b);
  const next = new Map<number, number>();
  for (let k = 0; k + 1 < calendar.length; k++) next.set(calendar[k]!, calendar[k + 1]!);
  const byDay = new Map<number, SymbolDay[]>();
  rows.forEach(({ symbol, index }, n) => {
    const list = bars.get(symbol)!;
    const at = list[index]!;
    const after = list[index + 1];
    const t1 = next.get(at.time.getTime());
    if (!after || t1 === undefined || after.time.getTime() !== t1) return;
    const probability = probabilities[n]!;
    const day: SymbolDay = {
      symbol,
      probability,
      signal: signalOf(model.manifest.signal, probability),
      nextReturn: after.adjClose / at.adjClose - 1,
    };
    const list2 = byDay.get(at.time.getTime());
    if (list2) list2.push(day);
    else byDay.set(at.time.getTime(), [day]);
  });
  return calendar.filter((t) => next.has(t)).map((t) => ({ time: new Date(t), symbols: byDay.get(t) ?? [] }));
}

/** A warning when the version was fitted (train or validation period, from its manifest) on any of [from, to]. */
function trainingOverlap(model: ModelVersionEntry, from: Date, to: Date): string[] {
  const { train, validation } = model.manifest.training;
  const fitFrom = new Date(train.from);
  const fitTo = new Date(validation.to);
  if (fitFrom.getTime() > to.getTime() || fitTo.getTime() < from.getTime()) return [];
  return [
    `${model.manifest.strategy}@${model.manifest.version} was fitted on ${train.from}..${validation.to} (training and validation), ` +
      `which overlaps ${iso(from)}..${iso(to)}: results there are in-sample and flatter the model`,
  ];
}

function iso(date: Date): string {
  return date.toISOString().slice(0, 10);
}
