import type { Config } from '../../config/index.js';
import { followInterest, type InterestSet } from '../../infra/coordination/interest.js';
import type { Lease } from '../../infra/coordination/lease.js';
import type { Marks } from '../../infra/coordination/marks.js';
import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { MarketFeed } from '../../infra/market-data/feed.js';
import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import type { EventBus } from '../../infra/pubsub/pubsub.js';
import { withDeadline } from '../../shared/deadline.js';
import type { CloseStep } from '../../shared/lifecycle.js';
import type { ModelRegistry } from '../models/index.js';
import type { PredictionService } from '../predictions/index.js';
import { SignalsMonitor } from './signals.monitor.js';
import { SignalsRepository } from './signals.repository.js';
import { SignalsService } from './signals.service.js';
import { signalsBus } from './signals.topics.js';

export interface SignalsModuleDeps {
  readonly config: Pick<Config, 'signals'>;
  readonly events: EventBus;
  /** Shared between instances with Redis, in-process without. */
  readonly coordination: { readonly interest: InterestSet; readonly lease: Lease; readonly marks: Marks };
  readonly database: Pick<Database, 'db'>;
  readonly market: {
    /** Symbol checks and resume reads. */
    readonly provider: MarketDataProvider;
    /** The serving market: resumes replay only its recorded signals. */
    readonly source: string;
    /** Says when new bars arrive; the monitor also runs on SIGNALS_INTERVAL_MS. */
    readonly feed?: MarketFeed | undefined;
    /** Streams what subscribers want beyond the configured universe (a vendor). */
    readonly follow?: ((symbols: readonly string[]) => void) | undefined;
  };
  readonly registry: ModelRegistry;
  readonly predictions: PredictionService;
  /** Committing what was just recorded, awaited (bounded) before publishing when SIGNALS_RECORD_WAIT_MS > 0. */
  readonly history: { flush(): Promise<unknown> };
  readonly metrics: Pick<Metrics, 'subscriptionsActive' | 'signalsPublishedTotal' | 'signalsTicksTotal'>;
  readonly logger: Logger;
}

export interface SignalsModule {
  readonly service: SignalsService;
  readonly monitor: SignalsMonitor;
  readonly closeSteps: readonly CloseStep[];
}

/**
 * Live signals, started: every instance's subscriber side (SignalsService), and the monitor that runs
 * where the lease is held, ticking on every new bar the feed announces.
 */
export function createSignalsModule(deps: SignalsModuleDeps): SignalsModule {
  const { config, registry, predictions, coordination, market, metrics } = deps;
  const { interest, lease, marks } = coordination;
  const logger = deps.logger.child({ component: 'signals' });
  const bus = signalsBus(deps.events);
  const service = new SignalsService({
    bus,
    registry,
    predictions,
    repository: new SignalsRepository(deps.database.db, deps.market.source),
    market: market.provider,
    interest,
    logger,
    maxReplay: config.signals.maxReplay,
    onSubscriptions: (delta) => metrics.subscriptionsActive.inc(delta),
  });
  const { recordWaitMs } = config.signals;
  const monitor = new SignalsMonitor({
    predictions,
    strategies: () => registry.strategies(),
    interest,
    lease,
    marks,
    received: (strategy, symbol) => service.lastReceived(strategy, symbol),
    // Interest expires after one lease period; a key missing for twice that is really gone.
    forgetAfterMs: 2 * config.signals.leaseMs,
    bus,
    recorded:
      recordWaitMs > 0
        ? () =>
            withDeadline(
              deps.history.flush().catch(() => undefined),
              recordWaitMs,
            )
        : async () => undefined,
    watchlist: config.signals.watchlist,
    intervalMs: config.signals.intervalMs,
    logger,
    onPublished: (strategy, count) => metrics.signalsPublishedTotal.inc({ strategy }, count),
    onTick: (trigger) => metrics.signalsTicksTotal.inc({ trigger }),
  });
  service.listen(registry.strategies());
  interest.start();
  monitor.start();
  const stopFollowing = market.follow ? followInterest(interest, market.follow) : undefined;
  // A feed that awaits its listener (a vendor catching up) announces the next bars only after these
  // are published, so signals go out in order.
  market.feed?.start((bars) => monitor.onBars(bars));
  return {
    service,
    monitor,
    closeSteps: [
      ...(stopFollowing ? [{ name: 'vendor interest', close: stopFollowing }] : []),
      {
        // Closed before history: the monitor's last tick still records.
        name: 'signals',
        close: async () => {
          await market.feed?.stop();
          await monitor.stop(); // releases the lease, so a successor need not wait for it to expire
          await service.stop();
          await interest.stop();
        },
      },
    ],
  };
}
