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
}

/** Receives the bars that just became available (several symbols at once). Must not throw. */
export type BarsListener = (bars: readonly Bar[]) => void;

/** The synthetic market ticking every `tickMs`: one new bar per symbol per tick. */
export function syntheticFeed(market: SyntheticMarket, tickMs: number): MarketFeed {
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'synthetic',
    start(listener) {
      if (timer) throw new Error('syntheticFeed: start() was called twice');
      timer = setInterval(() => listener(market.advance()), tickMs);
    },
    async stop() {
      clearInterval(timer);
    },
  };
}

/**
 * The ingest path for a vendor's bar events: `ingest(bars)` writes them to the bars store (an upsert:
 * a corrected bar replaces the stored one) and then announces them. Resolves once both are done;
 * rejects, announcing nothing, if the store refused them.
 */
export interface IngestFeed extends MarketFeed {
  ingest(bars: readonly Bar[]): Promise<void>;
}

export function createIngestFeed(name: string, store: Pick<BarsRepository, 'upsert'>): IngestFeed {
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
      await store.upsert(bars);
      if (!stopped) listener?.(bars);
    },
  };
}
