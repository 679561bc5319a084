import type { Config } from '../../config/index.js';
import type { HealthCheck } from '../../shared/health.js';
import type { CloseStep } from '../../shared/lifecycle.js';
import type { Logger } from '../logger/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MarketChoice } from './choose-market.js';
import { coalescingFetches } from './coalescing.js';
import { countingFetches } from './instrumented.js';
import type { MarketDataProvider } from './market-data.js';
import { resilientFetches, type ResilientProvider } from './resilient.js';

/** The chosen market, wrapped once for each kind of reader. */
export interface ServedMarket {
  /** Unwrapped: symbol lists, subscriptions' replay reads, the gateway's `market` for tests. */
  readonly provider: MarketDataProvider;
  /** The market recorded predictions are labelled with and history reads default to (MarketChoice.source). */
  readonly source: string;
  /** What predictions read: coalesced, through the breaker, counted. */
  readonly forPredictions: MarketDataProvider;
  /** What outcomes, point-in-time answers and backtests read: counted, no cache, no breaker (no stale bars; a batch job waits and retries on its own). */
  readonly forPastBars: MarketDataProvider;
  readonly health: HealthCheck;
  readonly closeSteps: readonly CloseStep[];
}

export interface ServedMarketOptions {
  readonly choice: MarketChoice;
  readonly config: Pick<Config, 'marketFetch'>;
  readonly metrics: Pick<Metrics, 'marketFetchesTotal' | 'marketBreakerState'>;
  readonly logger: Logger;
  /**
   * Told on every transition of the breaker: while it is not closed predictions come from the last
   * good bars marked stale, so what every prediction says may change with no new bar (the response cache).
   */
  readonly onBreakerStateChange?: ((state: 'closed' | 'half-open' | 'open') => void) | undefined;
}

const BREAKER_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

/**
 * Outermost first: requests coalesce into one fetch; a fetch goes through the breaker (serving the
 * last good bars as stale while it is open); only calls that reach the provider are counted.
 */
export function serveMarket({ choice, config, metrics, logger, onBreakerStateChange }: ServedMarketOptions): ServedMarket {
  const { provider } = choice;
  const counted = () => countingFetches(provider, (name) => metrics.marketFetchesTotal.inc({ provider: name }));
  const resilient = resilientFetches(counted(), {
    timeoutMs: config.marketFetch.timeoutMs,
    retries: config.marketFetch.retries,
    backoffMs: 50,
    breaker: { errorThresholdPercentage: 50, resetTimeoutMs: config.marketFetch.breakerResetMs, volumeThreshold: 5 },
    lastGoodEntries: 20_000,
    logger: logger.child({ component: 'market' }),
  });
  metrics.marketBreakerState.set({ provider: provider.name }, 0);
  resilient.onBreakerStateChange((state) => {
    metrics.marketBreakerState.set({ provider: provider.name }, BREAKER_GAUGE[state]);
    onBreakerStateChange?.(state);
  });
  return {
    provider,
    source: choice.source,
    forPredictions: coalescingFetches(resilient, config.marketFetch),
    forPastBars: counted(),
    health: marketHealth(resilient, choice.health),
    closeSteps: [{ name: 'market breaker', close: () => resilient.shutdown() }],
  };
}

/**
 * The market-data breaker: open means predictions come from the last good bars (`stale: true`), which
 * is degraded service, not an outage, so the instance stays ready. A vendor's own state (stream,
 * catch-up) degrades it too.
 */
function marketHealth(market: ResilientProvider, vendorHealth: MarketChoice['health']): HealthCheck {
  return {
    name: 'market',
    async check() {
      const state = market.breakerState;
      const store =
        state === 'closed'
          ? { status: 'ok' as const, detail: `${market.name}: answering` }
          : { status: 'degraded' as const, detail: `${market.name}: circuit ${state}; serving last good bars as stale` };
      if (!vendorHealth) return store;
      const feed = vendorHealth();
      return {
        status: feed.status === 'ok' ? store.status : 'degraded',
        detail: state === 'closed' ? feed.detail : `${feed.detail}; bars store circuit ${state}`,
      };
    },
  };
}
