import type { Logger } from '../../infra/logger/logger.js';
import { excludedFrom } from '../../infra/market-data/bar-quality.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { findStrategy } from '../../domain/strategies.js';
import type { Outcome, OutcomesRepository, PendingCursor, PendingOutcome } from './outcomes.repository.js';

/**
 * Fills in what happened after recorded predictions: once the bar `horizonBars` after a prediction's
 * asOf exists, its `realized_return`, `correct` and `covered` are appended to `prediction_outcomes`
 * (definitions in db/migrations/0004_prediction_outcomes.ts; the table in 0013_outcomes_table.ts).
 * Bars come through the market-data contract, so the same code resolves outcomes against stored bars
 * and against the synthetic market.
 *
 * ```ts
 * const outcomes = new OutcomesService({ repository: new OutcomesRepository(db), market, logger });
 * await outcomes.resolve();                     // every symbol with pending rows
 * await outcomes.resolve({ symbols: ['AAPL'] }); // after new bars of AAPL arrived
 * ```
 *
 * A prediction is matched to the bar whose time equals its asOf. A row whose asOf bar the provider does
 * not have (the synthetic market of an earlier run, bars deleted since) stays pending and is counted as
 * `unmatched`; one older than the `maxBarsBack` bars fetched per symbol is counted as `outOfReach`.
 */
export interface ResolveOptions {
  /** Only these symbols (e.g. those that just got a new bar). Default: every symbol with pending rows. */
  readonly symbols?: readonly string[];
  /** Called after each group of symbols. */
  readonly onProgress?: (progress: ResolveProgress) => void;
}

export interface ResolveProgress {
  readonly symbolsDone: number;
  readonly symbolCount: number;
  readonly resolved: number;
}

export interface ResolveReport {
  /** Symbols that had pending rows. */
  readonly symbols: number;
  /** Pending rows read (those not older than the bars fetched for their group). */
  readonly examined: number;
  /** Outcomes stored. */
  readonly resolved: number;
  /** Horizon not over yet: no bar `horizonBars` after asOf so far. */
  readonly notDue: number;
  /** No bar at the row's asOf in the provider's series. */
  readonly unmatched: number;
  /**
   * The asOf bar or the horizon's bar is flagged as one outcomes leave out (QUALITY_POLICY in
   * bar-quality.ts): the row stays pending, and resolves if the bar is corrected (re-imported clean).
   */
  readonly excluded: number;
  /** Older than the bars fetched per symbol (see maxBarsBack), or of a strategy this build does not know. */
  readonly outOfReach: number;
  readonly elapsedMs: number;
}

export interface OutcomesServiceDeps extends OutcomesServiceOptions {
  readonly repository: OutcomesRepository;
  /** Where realized closes come from (uncached, no breaker: a batch job waits and retries on its own). */
  readonly market: MarketDataProvider;
  readonly logger: Logger;
}

export interface OutcomesServiceOptions {
  /** Symbols per market fetch. Default 50. */
  readonly symbolsPerFetch?: number;
  /** Most bars per fetch when paging back to a symbol's oldest pending row (pages start at 64 and double). Default 2,500. */
  readonly barsPerFetch?: number;
  /** Most bars fetched per symbol and pass (≈ 40 years of daily bars). Default 10,000. */
  readonly maxBarsBack?: number;
  /** Pending rows read per query. Default 10,000. */
  readonly rowsPerQuery?: number;
}

export class OutcomesService {
  readonly #symbolsPerFetch: number;
  readonly #barsPerFetch: number;
  readonly #maxBarsBack: number;
  readonly #rowsPerQuery: number;
  #running: Promise<ResolveReport> | undefined;
  readonly #resolvedListeners: Array<(report: ResolveReport) => void> = [];

  private readonly repository: OutcomesRepository;
  private readonly market: MarketDataProvider;
  private readonly logger: Logger;

  constructor({ repository, market, logger, ...options }: OutcomesServiceDeps) {
    this.repository = repository;
    this.market = market;
    this.logger = logger;
    this.#symbolsPerFetch = options.symbolsPerFetch ?? 50;
    this.#barsPerFetch = options.barsPerFetch ?? 2_500;
    this.#maxBarsBack = options.maxBarsBack ?? 10_000;
    this.#rowsPerQuery = options.rowsPerQuery ?? 10_000;
  }

  /**
   * Calls `listener` after every pass (scheduled or on demand) that stored at least one outcome: new
   * evidence for whatever judges models on outcomes (the promotion loop). A throwing listener is logged.
   */
  onResolved(listener: (report: ResolveReport) => void): void {
    this.#resolvedListeners.push(listener);
  }

  /**
   * One pass over pending rows. Passes never overlap: a call while one runs waits for it and then runs
   * its own (so a caller that just saw new bars is sure they were considered). Throws if the database
   * or the market fails; whatever was stored before that stays stored.
   */
  async resolve(options: ResolveOptions = {}): Promise<ResolveReport> {
    const previous = this.#running;
    const run = (async () => {
      await previous?.catch(() => undefined);
      return this.#resolve(options);
    })();
    this.#running = run;
    let report: ResolveReport;
    try {
      report = await run;
    } finally {
      if (this.#running === run) this.#running = undefined;
    }
    if (report.resolved > 0) {
      for (const listener of this.#resolvedListeners) {
        try {
          listener(report);
        } catch (error) {
          this.logger.warn({ err: error }, 'realized outcomes: a listener failed');
        }
      }
    }
    return report;
  }

  /**
   * Runs {@link resolve} every `intervalMs` (first run after one interval) until the returned function is
   * called; failures are logged, once per streak, and the next tick tries again.
   */
  schedule(intervalMs: number): () => Promise<void> {
    let failing = false;
    let current: Promise<unknown> | undefined;
    const tick = () => {
      if (current) return; // a slow pass is not stacked on
      current = this.resolve()
        .then((report) => {
          if (failing) this.logger.info('realized outcomes: resolving works again');
          failing = false;
          if (report.resolved > 0) this.logger.info({ ...report }, `realized outcomes: ${report.resolved} stored`);
        })
        .catch((error: unknown) => {
          if (!failing) this.logger.warn({ err: error }, 'realized outcomes: pass failed; retrying on the next interval');
          failing = true;
        })
        .finally(() => (current = undefined));
    };
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await current;
    };
  }

  async #resolve(options: ResolveOptions): Promise<ResolveReport> {
    const started = performance.now();
    const pending = await this.repository.pendingSymbols(options.symbols);
    const totals = { examined: 0, resolved: 0, notDue: 0, unmatched: 0, excluded: 0, outOfReach: 0 };
    let symbolsDone = 0;
    for (let start = 0; start < pending.length; start += this.#symbolsPerFetch) {
      const group = pending.slice(start, start + this.#symbolsPerFetch);
      const bars = await this.#barsCovering(new Map(group.map((g) => [g.symbol, g.oldest])));
      // Rows older than every symbol's first fetched bar cannot be matched in this pass: skip them in SQL.
      const firstTimes = [...bars.values()].flatMap((list) => (list[0] ? [list[0].time.getTime()] : []));
      if (firstTimes.length === 0) {
        // The provider knows none of these symbols: nothing to match against.
        totals.outOfReach += group.reduce((sum, g) => sum + g.rows, 0);
        symbolsDone += group.length;
        options.onProgress?.({ symbolsDone, symbolCount: pending.length, resolved: totals.resolved });
        continue;
      }
      const since = new Date(Math.min(...firstTimes));
      const indexes = new Map([...bars].map(([symbol, list]) => [symbol, new Map(list.map((bar, i) => [bar.time.getTime(), i]))]));
      let cursor: PendingCursor | undefined;
      let readInGroup = 0;
      for (;;) {
        const rows = await this.repository.pendingRows(
          group.map((g) => g.symbol),
          since,
          cursor,
          this.#rowsPerQuery,
        );
        const outcomes: Outcome[] = [];
        for (const row of rows) {
          const verdict = outcomeOf(row, bars.get(row.symbol) ?? [], indexes.get(row.symbol));
          if (typeof verdict === 'string') totals[verdict]++;
          else outcomes.push(verdict);
        }
        totals.examined += rows.length;
        readInGroup += rows.length;
        totals.resolved += await this.repository.saveOutcomes(outcomes);
        const last = rows.at(-1);
        if (!last || rows.length < this.#rowsPerQuery) break;
        cursor = last;
      }
      // Pending rows before `since` were not read: out of reach of this pass.
      totals.outOfReach += Math.max(0, group.reduce((sum, g) => sum + g.rows, 0) - readInGroup);
      symbolsDone += group.length;
      options.onProgress?.({ symbolsDone, symbolCount: pending.length, resolved: totals.resolved });
    }
    return { symbols: pending.length, ...totals, elapsedMs: performance.now() - started };
  }

  /**
   * Bars of each symbol from (at least) its oldest pending asOf to the newest bar, paging back with one
   * fetch for the whole group per page (64 bars, then doubling up to `barsPerFetch`), up to `maxBarsBack`.
   */
  async #barsCovering(oldest: ReadonlyMap<string, Date>): Promise<Map<string, Bar[]>> {
    const result = new Map<string, Bar[]>();
    let wanted = [...oldest.keys()];
    const untilBySymbol = new Map<string, Date>();
    // Pending rows are usually a horizon old, so the first page is small and pages double from there.
    for (let page = 0; wanted.length > 0; page++) {
      const lookback = Math.min(this.#barsPerFetch, FIRST_PAGE_BARS * 2 ** page);
      // Symbols page back from different bars; one fetch per distinct `until` (usually one: the newest).
      const byUntil = new Map<number, string[]>();
      for (const symbol of wanted) {
        const key = untilBySymbol.get(symbol)?.getTime() ?? -1;
        const list = byUntil.get(key);
        if (list) list.push(symbol);
        else byUntil.set(key, [symbol]);
      }
      const next: string[] = [];
      for (const [key, symbols] of byUntil) {
        const until = key === -1 ? undefined : new Date(key);
        const fetchedPage = await this.market.fetchBars(symbols, { lookback, ...(until && { until }) });
        for (const symbol of symbols) {
          const fetched = fetchedPage.get(symbol) ?? [];
          const have = result.get(symbol) ?? [];
          // A page overlaps the previous one at its `until` bar (inclusive); drop the repeat.
          const fresh = have.length ? fetched.filter((bar) => bar.time < have[0]!.time) : fetched;
          const merged = fresh.concat(have);
          result.set(symbol, merged);
          const first = merged[0];
          const exhausted = fresh.length === 0 || fetched.length < lookback;
          if (!first || exhausted || first.time <= oldest.get(symbol)! || merged.length >= this.#maxBarsBack) continue;
          untilBySymbol.set(symbol, first.time);
          next.push(symbol);
        }
      }
      wanted = next;
    }
    return result;
  }
}

/** The first page's size when paging back through bars. */
const FIRST_PAGE_BARS = 64;

type Verdict = Outcome | 'notDue' | 'unmatched' | 'excluded' | 'outOfReach';

/** The outcome of one pending row given its symbol's bars (ascending) and their index by time. */
export function outcomeOf(row: PendingOutcome, bars: readonly Bar[], index: ReadonlyMap<number, number> | undefined): Verdict {
  const horizonBars = findStrategy(row.strategy)?.horizonBars;
  if (horizonBars === undefined) return 'outOfReach';
  const first = bars[0];
  if (!first || row.time < first.time) return 'outOfReach';
  const i = index?.get(row.time.getTime());
  if (i === undefined) return 'unmatched';
  const j = i + horizonBars;
  if (j >= bars.length) return 'notDue';
  const at = bars[i]!;
  const later = bars[j]!;
  // A stale or off-calendar price is not what happened: scoring the model on it would be scoring the vendor.
  if (excludedFrom('outcomes', at) || excludedFrom('outcomes', later)) return 'excluded';
  const ratio = later.adjClose / at.adjClose;
  const realizedReturn = ratio - 1;
  const price = at.close * ratio;
  return {
    symbol: row.symbol,
    strategy: row.strategy,
    modelVersion: row.modelVersion,
    time: row.time,
    realizedReturn,
    correct: row.probability >= 0.5 === realizedReturn > 0,
    covered: price >= row.intervalLow && price <= row.intervalHigh,
  };
}
