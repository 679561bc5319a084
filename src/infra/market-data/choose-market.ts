import type { Config } from '../../config/index.js';
import type { Logger } from '../logger/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { withDeadline } from '../../shared/deadline.js';
import { type BarsRepository } from './bars-repository.js';
import { createBarsStoreProvider } from './bars-store.js';
import { announcingWrites, countingFlags, syntheticFeed, type MarketFeed } from './feed.js';
import { STORED_MARKET, SYNTHETIC_MARKET, type MarketDataProvider } from './market-data.js';
import { createReplay } from './replay.js';
import { DEFAULT_SYNTHETIC_UNIVERSE, createSyntheticMarket } from './synthetic.js';
import { createMarketVendor, type VendorSettings } from './vendors.js';

/** Where bars come from, and what goes with it; the same shape whatever MARKET_PROVIDER says. */
export interface MarketChoice {
  /** Reads bars: the bars store, the replay clock's view of it, or the synthetic market. */
  readonly provider: MarketDataProvider;
  /**
   * The market every recorded prediction is labelled with and every history read defaults to
   * (docs/decisions/market-source.md): STORED_MARKET for anything read from the bars store, else SYNTHETIC_MARKET.
   */
  readonly source: string;
  /** Says when new bars arrive; absent when nothing does (stored bars without replay). */
  readonly feed?: MarketFeed;
  /** The vendor's own state for readiness (stream, last catch-up), beside the provider's breaker. */
  readonly health?: () => { readonly status: 'ok' | 'degraded'; readonly detail: string };
  /** Streams symbols live subscribers want beyond the configured universe (a vendor with a stream). */
  readonly follow?: (symbols: readonly string[]) => void;
  /** Closes whatever connection a vendor holds (the feed itself is stopped by whoever started it). */
  readonly release: () => Promise<void>;
}

export interface ChooseMarketOptions {
  readonly config: Pick<Config, 'marketProvider' | 'replay' | 'synthetic' | 'signals'>;
  readonly repository: BarsRepository;
  /** Where the store's flagged bars (bar-quality.ts) are counted: in the store, and as a vendor stores them. */
  readonly metrics?: Pick<Metrics, 'flaggedBars' | 'marketBarsFlaggedTotal'>;
  readonly logger: Logger;
  /** Runs every write of a vendor's bars to the store, given the symbols (the response cache's announcement). */
  readonly announceWrites?: (<T>(symbols: readonly string[], write: () => Promise<T>) => Promise<T>) | undefined;
}

type ProviderKind = Config['marketProvider']['kind'];
type SettingsOf<K extends ProviderKind> = Extract<Config['marketProvider'], { kind: K }>;

/**
 * One entry per MARKET_PROVIDER: a vendor added beside Alpaca is one line here and its own file, and
 * nothing above infra/ names a vendor (vendors.ts builds each live vendor). The type makes an entry for every kind config accepts.
 */
const MARKET_PROVIDERS: { readonly [K in ProviderKind]: (settings: SettingsOf<K>, options: ChooseMarketOptions) => Promise<MarketChoice> } =
  {
    store: (_settings, options) => storedOrSynthetic(options),
    alpaca: liveVendor,
    polygon: liveVendor,
  };

/**
 * Stored bars are the truth when there are any; only an empty store falls back to the synthetic market
 * (so a fresh machine serves predictions), and nothing synthetic is ever written to the store: the
 * synthetic market is reproducible from its seed, and if its bars were stored, the next start would
 * find "stored bars" and serve a frozen copy of an invented market as if it were real data (and train
 * and evaluate on it). Bars from a vendor go to the store (see createIngestFeed in feed.ts).
 *
 * The feed says when new bars arrive: the synthetic market's ticks, a replay of stored bars when
 * MARKET_REPLAY_FROM is set, or the vendor's stream. Stored bars without replay have no feed (imports
 * are batch jobs); the signals monitor's interval covers them.
 */
export function chooseMarket(options: ChooseMarketOptions): Promise<MarketChoice> {
  if (options.metrics) options.metrics.flaggedBars.source = () => options.repository.countFlagged();
  const settings = options.config.marketProvider;
  const choose = MARKET_PROVIDERS[settings.kind] as (
    settings: Config['marketProvider'],
    options: ChooseMarketOptions,
  ) => Promise<MarketChoice>;
  return choose(settings, options);
}

/** The bars store, the replay and the synthetic market hold no connection of their own. */
const nothingHeld = async (): Promise<void> => undefined;

async function storedOrSynthetic({ config, repository, logger }: ChooseMarketOptions): Promise<MarketChoice> {
  const stored = await repository.listSymbols();
  if (config.replay) {
    if (stored.length === 0) throw new Error('MARKET_REPLAY_FROM is set but no bars are stored: import some first (npm run import)');
    const replay = createReplay({
      repository,
      from: config.replay.from,
      tickMs: config.replay.tickMs,
      onFinished: (clock) => logger.info({ clock }, 'market replay: reached the last stored bar; the clock stays there'),
      onError: (error) => logger.warn({ err: error }, 'market replay: a step failed; retrying on the next tick'),
    });
    logger.info({ symbols: stored.length, from: config.replay.from, tickMs: config.replay.tickMs }, 'market data: replaying stored bars');
    return { provider: replay.provider, source: STORED_MARKET, feed: replay.feed, release: nothingHeld };
  }
  if (stored.length > 0) {
    logger.info({ symbols: stored.length }, 'market data: stored bars');
    return { provider: createBarsStoreProvider(repository), source: STORED_MARKET, release: nothingHeld };
  }
  const synthetic = createSyntheticMarket({
    symbols: DEFAULT_SYNTHETIC_UNIVERSE,
    seed: config.synthetic.seed,
    historyBars: 2_520,
    startTime: new Date(),
  });
  logger.info(
    { symbols: DEFAULT_SYNTHETIC_UNIVERSE.length, tickMs: config.synthetic.tickMs },
    'market data: no bars stored, serving the synthetic market (import bars with `npm run import`)',
  );
  if (config.synthetic.tickMs <= 0) return { provider: synthetic, source: SYNTHETIC_MARKET, release: nothingHeld };
  return { provider: synthetic, source: SYNTHETIC_MARKET, feed: syntheticFeed(synthetic, config.synthetic.tickMs), release: nothingHeld };
}

/** A live vendor (vendors.ts): daily bars backfilled over REST into the bars store, then streamed or polled; queries read the store. */
async function liveVendor(
  settings: VendorSettings,
  { config, repository, metrics, logger, announceWrites }: ChooseMarketOptions,
): Promise<MarketChoice> {
  const symbols = settings.symbols ?? [...new Set([...config.signals.watchlist, ...DEFAULT_SYNTHETIC_UNIVERSE])];
  const counted = metrics ? countingFlags(repository, (reason, n) => metrics.marketBarsFlaggedTotal.inc({ reason }, n)) : repository;
  const store = announceWrites ? announcingWrites(counted, announceWrites) : counted;
  const vendor = createMarketVendor(settings, { symbols, store, logger: logger.child({ component: 'market' }) });
  logger.info(vendor.describe, `market data: ${settings.kind}, backfilling into the bars store`);
  // Start-up waits for the backfill, but not for a vendor that hangs (4 attempts of 10 s): after 15 s
  // it goes on in the background. A refusal is logged and in readiness; whatever is stored is served.
  if ((await withDeadline(vendor.feed.backfill(), 15_000)) === 'timeout') {
    logger.warn(`market data: the ${settings.kind} backfill is taking over 15 s; starting anyway, it goes on in the background`);
  }
  return {
    provider: { ...createBarsStoreProvider(repository), name: settings.kind },
    source: STORED_MARKET,
    feed: vendor.feed,
    health: () => vendor.feed.health(),
    follow: (wanted) => vendor.feed.follow(wanted),
    release: () => vendor.release(),
  };
}
