import type { GraphQLSchema } from 'graphql';
import type { Config } from './config/index.js';
import type { ContextFactory } from './context/context.js';
import type { Cache } from './infra/cache/cache.js';
import type { Database } from './infra/db/index.js';
import type { MarketFeed } from './infra/market-data/feed.js';
import type { MarketDataProvider } from './infra/market-data/market-data.js';
import type { EventBus } from './infra/pubsub/pubsub.js';
import type { ResponseCache } from './infra/response-cache/response-cache.js';
import type { HistoryWriter, OutcomesService } from './modules/history/index.js';
import type { ModelLifecycle, ModelRegistry, PromotionLoop } from './modules/models/index.js';
import type { RetrainingModule } from './modules/retraining/index.js';
import type { SignalsMonitor, SignalsService } from './modules/signals/index.js';

/** Everything a running gateway holds, for tests and for the shutdown sequence. */
export interface RunningGateway {
  readonly port: number;
  readonly config: Config;
  readonly database: Database;
  readonly cache: Cache;
  readonly events: EventBus;
  readonly market: MarketDataProvider;
  readonly registry: ModelRegistry;
  readonly lifecycle: ModelLifecycle;
  readonly history: HistoryWriter;
  /** RESPONSE_CACHE=on: the cache of whole answers (its versions say when inputs last changed). */
  readonly responseCache: ResponseCache | undefined;
  /** Fills in realized outcomes (periodically when OUTCOMES_INTERVAL_MS > 0; callable on new bars). */
  readonly outcomes: OutcomesService;
  /** The promotion evaluator (evaluates where its lease is held, every PROMOTION_INTERVAL_MS and after outcome passes). */
  readonly promotion: PromotionLoop;
  /** Live signals: the subscriber side (every instance) and the monitor (runs where the lease is held). */
  readonly signals: { readonly service: SignalsService; readonly monitor: SignalsMonitor; readonly feed: MarketFeed | undefined };
  /** Scheduled retraining: its service and schedule when RETRAIN_SCHEDULE is set, and the recorded runs. */
  readonly retraining: Pick<RetrainingModule, 'service' | 'schedule' | 'runs'>;
  /** The executable schema and the per-operation context factory the transports use. */
  readonly graphql: { readonly schema: GraphQLSchema; readonly createContext: ContextFactory };
  /** Drains and releases everything; resolves when the process may exit. */
  stop(): Promise<void>;
}
