import { QUALITY_DEFAULTS, withQuality, type QualityOptions } from './bar-quality.js';
import { validateBars, type RefusedBar } from './bar-rules.js';
import type { BarsRepository } from './bars-repository.js';
import type { Bar } from './market-data.js';
import type { SyntheticMarket } from './synthetic.js';

/**
 * The live side of market data: something that says "these bars are new". A feed only announces;
 * the bars themselves are read through the {@link MarketDataProvider} like any other, and a feed calls
 * its listener only once the provider already serves the bars it announces, so whoever reacts (the
 * signals monitor) can simply fetch the newest bars.
 *
 * Engines: {@link syntheticFeed} (the synthetic market ticking on a fresh machine), `replay.ts`
 * (stored bars replayed as if they were arriving), and {@link createIngestFeed}, the path a vendor
 * adapter pushes real bars through: they are written to the bars store, then announced. Providers
 * with no bar events at all (a vendor polled over HTTP) need no feed: the monitor also runs on a
 * fixed interval (SIGNALS_INTERVAL_MS).
 *
 * ```ts
 * const feed = syntheticFeed(market, 5_000);
 * feed.start((bars) => monitor.onBars(bars));
 * await feed.stop();
 * ```
 */
export interface MarketFeed {
  /** For logs: `synthetic`, `replay`, a vendor name. */
  readonly name: string;
  /** Starts announcing. Calling it twice is a mistake and throws. */
  start(listener: BarsListener): void;
  /** Stops announcing; no listener call starts after it resolves. */
  stop(): Promise<void>;
  /**
   * The earliest time (ms since the epoch) a bar beyond those already served could be served, for
   * feeds on a fixed clock (synthetic, replay); absent or undefined: at any moment (a vendor's stream).
   * What HTTP answers' Cache-Control may promise is bounded by it (server/cache-control.ts).
   */
  nextBarAt?(): number | undefined;
}

/**
 * How long the bars now served stay the newest: until the feed's next bar could arrive; 0 when a
 * bar could arrive at any moment; Infinity without a feed (stored bars change only through imports).
 */
export function msUntilNextBar(feed: Pick<MarketFeed, 'nextBarAt'> | undefined, now = Date.now()): number {
  if (!feed) return Number.POSITIVE_INFINITY;
  const at = feed.nextBarAt?.();
  return at === undefined ? 0 : Math.max(0, at - now);
}

/**
 * Receives the bars that just became available (several symbols at once). Must not throw. A feed
 * that keeps announcements in order (a vendor catching up session by session) awaits a returned
 * promise before announcing the next bars; the others ignore it.
 */
export type BarsListener = (bars: readonly Bar[]) => unknown;

/** The synthetic market ticking every `tickMs`: one new bar per symbol per tick. */
export function syntheticFeed(market: SyntheticMarket, tickMs: number): MarketFeed {
  let timer: NodeJS.Timeout | undefined;
  let lastTick: number | undefined;
  return {
    name: 'synthetic',
    start(listener) {
      if (timer) throw new Error('syntheticFeed: start() was called twice');
      lastTick = Date.now();
      timer = setInterval(() => {
        lastTick = Date.now();
        listener(market.advance());
      }, tickMs);
    },
    async stop() {
      clearInterval(timer);
    },
    // A bar is served the moment its tick runs, and Node runs an interval's next callback no sooner
    // than tickMs after the previous one started. Not started: no tick is scheduled yet.
    nextBarAt: () => (lastTick === undefined ? undefined : lastTick + tickMs),
  };
}

/**
 * The ingest path for a vendor's bar events: `ingest(bars)` checks them against the serving rules
 * (bar-rules.ts, the same as CSV import; each symbol's first bar is compared with its newest stored
 * bar before it), flags the suspect ones (bar-quality.ts, judged after the symbol's stored bars before
 * them: a missing session, a move beyond N× the recent volatility), writes them with their flags to
 * the bars store (an upsert: a corrected bar replaces the stored one) and then announces them. Resolves once both are done; rejects, storing and announcing nothing, with
 * an {@link InvalidBarsError} if any bar breaks a rule, or with the store's error if it refused them.
 */
export interface IngestFeed extends MarketFeed {
  ingest(bars: readonly Bar[]): Promise<void>;
}

/** A batch refused by the serving rules: every bad bar with its position and reason. */
export class InvalidBarsError extends Error {
  constructor(
    readonly feed: string,
    readonly refused: readonly RefusedBar[],
  ) {
    const shown = refused.slice(0, 5).map((r) => `#${r.index} ${String(r.bar.symbol)}: ${r.reason}`);
    super(
      `ingest feed ${feed}: ${refused.length} bar(s) refused, nothing stored: ${shown.join('; ')}${refused.length > shown.length ? '; …' : ''}`,
    );
    this.name = 'InvalidBarsError';
  }
}

export function createIngestFeed(
  name: string,
  store: Pick<BarsRepository, 'upsert' | 'fetchBars'>,
  options: { readonly quality?: QualityOptions } = {},
): IngestFeed {
  const contextBars = (options.quality?.volatilityWindow ?? QUALITY_DEFAULTS.volatilityWindow) + 1;
  let listener: BarsListener | undefined;
  let stopped = false;
  return {
    name,
    start(next) {
      if (listener) throw new Error(`ingest feed ${name}: start() was called twice`);
      listener = next;
    },
    async stop() {
      stopped = true;
    },
    async ingest(bars) {
      if (bars.length === 0) return;
      const context = await previousBars(store, bars, contextBars);
      const newest = new Map([...context].flatMap(([symbol, list]) => (list.length ? [[symbol, list.at(-1)!] as const] : [])));
      const { refused } = validateBars(bars, { previous: newest });
      if (refused.length > 0) throw new InvalidBarsError(name, refused);
      await store.upsert(withQuality(bars, context, options.quality));
      if (!stopped) listener?.(bars);
    },
  };
}

/**
 * Each symbol's newest `lookback` stored bars before its earliest bar in `bars` (ascending): what its
 * first new bar is compared with. One query per distinct earliest time (a vendor's batch is usually one
 * moment: one query).
 */
async function previousBars(store: Pick<BarsRepository, 'fetchBars'>, bars: readonly Bar[], lookback: number): Promise<Map<string, Bar[]>> {
  const earliest = new Map<string, number>();
  for (const bar of bars) {
    const time = bar.time instanceof Date ? bar.time.getTime() : Number.NaN;
    if (typeof bar.symbol !== 'string' || !Number.isFinite(time)) continue; // refused by the rules anyway
    const known = earliest.get(bar.symbol);
    if (known === undefined || time < known) earliest.set(bar.symbol, time);
  }
  const byTime = new Map<number, string[]>();
  for (const [symbol, time] of earliest) {
    const list = byTime.get(time);
    if (list) list.push(symbol);
    else byTime.set(time, [symbol]);
  }
  const previous = new Map<string, Bar[]>();
  for (const [time, symbols] of byTime) {
    const found = await store.fetchBars(symbols, { lookback, until: new Date(time - 1) });
    for (const [symbol, list] of found) previous.set(symbol, list);
  }
  return previous;
}

/**
 * The same feed, with `onBars` told of every announcement just before the feed's listener is (the
 * response cache learns of new bars this way, whatever the feed). `onBars` must not throw.
 */
export function tapFeed<Feed extends MarketFeed>(feed: Feed, onBars: (bars: readonly Bar[]) => void): Feed {
  return new Proxy(feed, {
    get(target, property, receiver) {
      if (property === 'start') {
        return (listener: BarsListener) =>
          target.start((bars) => {
            onBars(bars);
            return listener(bars);
          });
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The bars store with every upsert run inside `around`, given the symbols written (the response cache
 * counts them as changing while the write runs, so no answer computed from the bars before it is kept).
 */
export function announcingWrites<Store extends Pick<BarsRepository, 'upsert'>>(
  store: Store,
  around: <T>(symbols: readonly string[], write: () => Promise<T>) => Promise<T>,
): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'upsert') {
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      }
      return (bars: readonly Bar[]) => around([...new Set(bars.map((bar) => bar.symbol))], () => target.upsert(bars));
    },
  });
}

/**
 * The bars store with every upsert's flagged bars counted, per flag (for `sibyl_market_bars_flagged_total`):
 * wraps the store an ingest feed writes through, so every vendor's bars are counted with no vendor code.
 */
export function countingFlags<Store extends Pick<BarsRepository, 'upsert'>>(
  store: Store,
  count: (reason: string, bars: number) => void,
): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'upsert') {
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      }
      return async (bars: readonly Bar[]) => {
        const result = await target.upsert(bars);
        const counts = new Map<string, number>();
        for (const bar of bars) for (const flag of bar.quality ?? []) counts.set(flag, (counts.get(flag) ?? 0) + 1);
        for (const [reason, n] of counts) count(reason, n);
        return result;
      };
    },
  });
}
