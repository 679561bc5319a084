import { redactUrl, type Config } from '../config/index.js';
import type { HealthCheck } from '../shared/health.js';
import type { Lifecycle } from '../shared/lifecycle.js';
import { VERSION } from '../shared/version.js';
import type { Cache } from './cache/cache.js';
import { withFallback } from './cache/fallback.js';
import { createMemoryCache } from './cache/memory.js';
import { createRedisCache } from './cache/redis.js';
import { createLocalInterest, createRedisInterest, type InterestSet } from './coordination/interest.js';
import { createLocalLease, createRedisLease, type Lease } from './coordination/lease.js';
import { createLocalMarks, createRedisMarks, type Marks } from './coordination/marks.js';
import { applyChunkInterval, migrateToLatest, openDatabase, type Database } from './db/index.js';
import type { Logger } from './logger/logger.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from './pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from './redis/redis.js';
import { inputKind } from './response-cache/inputs.js';
import { invalidationsChannel, shareInvalidations } from './response-cache/redis-invalidations.js';
import { createResponseCache, type ResponseCache } from './response-cache/response-cache.js';
import { startTracing } from './tracing/tracing.js';

/** The concrete infrastructure the configuration asks for, behind the contracts modules know. */
export interface Infrastructure {
  readonly database: Database;
  /** Present with REDIS_URL; the rate limiter shares its command connection. */
  readonly redis: RedisConnections | undefined;
  readonly cache: Cache;
  readonly events: EventBus;
  /** Live signals: what subscribers want, who runs the monitor, the last bar published. */
  readonly coordination: { readonly interest: InterestSet; readonly lease: Lease; readonly marks: Marks };
  readonly metrics: Metrics;
  /** Readiness of the parts built here that no module wraps (Redis). */
  readonly health: readonly HealthCheck[];
  /** Calls `listener` whenever the event bus reconnects (a change published meanwhile was lost). */
  onEventsReconnected(listener: () => void): void;
  /**
   * A lease of its own for a job one instance at a time must run (`name` is the key after the prefix,
   * e.g. `models:promotion`): local (always held) without Redis, a Redis lease with it, of the
   * SIGNALS_LEASE_MS lifetime. Unlike the monitor's, it is never held "alone" while Redis is down: such
   * a job waits rather than runs on every instance.
   */
  leaseFor(name: string): Lease;
  /**
   * RESPONSE_CACHE=on: whole answers until an input changes; with Redis, changes are shared between
   * instances and it serves only while they arrive (response-cache/redis-invalidations.ts).
   */
  readonly responseCache: ResponseCache | undefined;
}

export interface ComposeOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Each part's close step is registered as soon as it exists, so a failed start releases it. */
  readonly lifecycle: Pick<Lifecycle, 'add'>;
}

/**
 * The one place concrete infrastructure is created from configuration (docs/decisions/composition-root.md):
 * tracing, the database (migrated), Redis, and what is built on Redis or in-process without it.
 */
export async function composeInfrastructure({ config, logger, lifecycle }: ComposeOptions): Promise<Infrastructure> {
  if (config.tracing) {
    const tracing = await startTracing({ endpoint: config.tracing.otlpEndpoint, serviceName: 'sibyl', version: VERSION });
    // Registered first, so released last: spans of the shutdown itself are still exported.
    lifecycle.add({ name: 'tracing', close: () => tracing.shutdown() });
    logger.info({ endpoint: redactUrl(config.tracing.otlpEndpoint) }, 'tracing to OTLP/HTTP');
  }
  const database = await openDatabase(config.database, logger.child({ component: 'db' }));
  lifecycle.add({ name: 'database', close: () => database.close() });
  const { applied } = await migrateToLatest(database.db);
  logger.info(
    { engine: database.engine, version: database.serverVersion, timescale: database.timescale, migrationsApplied: applied },
    applied.length ? `database migrated (${applied.length} applied)` : 'database schema up to date',
  );
  const barsChunkWas = await applyChunkInterval(database, 'market_bars', config.barsChunkDays);
  if (barsChunkWas !== undefined)
    logger.info({ days: config.barsChunkDays, was: barsChunkWas }, 'market_bars chunk interval set (chunks created from now on)');

  let redis: RedisConnections | undefined;
  if (config.redis) {
    const connected = (redis = await connectRedis({ url: config.redis.url, logger }));
    lifecycle.add({ name: 'redis', close: () => connected.close() });
    logger.info({ redis: redactUrl(config.redis.url) }, 'redis connected');
  }
  const metrics = createMetrics();
  let responseCache: ResponseCache | undefined;
  if (config.responseCache.enabled) {
    const cache = (responseCache = createResponseCache({ maxBytes: config.responseCache.maxBytes }));
    metrics.responseCache.source = () => ({ entries: cache.stats.entries, bytes: cache.stats.bytes, available: cache.available });
    cache.versions.onChange((change, origin) => {
      const kinds = 'all' in change ? ['all'] : [...new Set(change.inputs.map(inputKind))];
      for (const input of kinds) metrics.responseCacheInvalidationsTotal.inc({ input, origin });
    });
    if (redis) {
      const sharing = shareInvalidations({
        cache,
        publisher: redis.publisher,
        subscriber: redis.subscriber,
        channel: invalidationsChannel(config.keyPrefix),
        logger: logger.child({ component: 'response-cache' }),
      });
      // Before Redis closes (registered after it, so released first).
      lifecycle.add({ name: 'response cache invalidations', close: () => sharing.close() });
    }
  }
  return {
    database,
    redis,
    ...(redis ? onRedis(redis, config, logger) : inProcess(config)),
    metrics,
    health: redis ? [redis.health] : [],
    onEventsReconnected: (listener) => redis?.subscriber.on('ready', listener),
    leaseFor: (name) =>
      redis
        ? createRedisLease({
            redis: redis.command,
            key: `${config.keyPrefix}${name}`,
            ttlMs: config.signals.leaseMs,
            logger: logger.child({ component: 'lease', lease: name }),
          })
        : createLocalLease(),
    responseCache,
  };
}

type Shared = Pick<Infrastructure, 'cache' | 'events' | 'coordination'>;

/** One process is the only instance: it holds the monitor itself. */
function inProcess(config: Config): Shared {
  return {
    cache: createMemoryCache(),
    events: createMemoryEventBus({ keyPrefix: config.keyPrefix }),
    coordination: { interest: createLocalInterest(), lease: createLocalLease(), marks: createLocalMarks() },
  };
}

/**
 * Shared between instances through Redis. An outage degrades to in-process cache and events (see
 * fallback.ts and pubsub.ts), not to errors.
 */
function onRedis(redis: RedisConnections, config: Config, logger: Logger): Shared {
  const { keyPrefix } = config;
  const signalsLogger = logger.child({ component: 'signals' });
  return {
    cache: withFallback(
      createRedisCache({ redis: redis.command, keyPrefix, logger }),
      createMemoryCache(),
      () => redis.command.status === 'ready',
    ),
    events: createRedisEventBus({
      publisher: redis.publisher,
      subscriber: redis.subscriber,
      keyPrefix,
      logger: logger.child({ component: 'events' }),
    }),
    coordination: {
      interest: createRedisInterest({
        redis: redis.command,
        key: `${keyPrefix}signals:interest`,
        refreshMs: Math.max(100, Math.floor(config.signals.leaseMs / 3)),
        logger: signalsLogger,
      }),
      lease: createRedisLease({
        redis: redis.command,
        key: `${keyPrefix}signals:monitor`,
        ttlMs: config.signals.leaseMs,
        logger: signalsLogger,
        // While Redis is down events reach only local subscribers, so each instance serves its own.
        aloneWhenUnreachable: true,
        sharedReady: () => redis.publisher.status === 'ready' && redis.subscriber.status === 'ready',
      }),
      // The last bar published per (strategy, symbol), next to the lease, for whoever holds it next.
      marks: createRedisMarks({ redis: redis.command, key: `${keyPrefix}signals:published`, ttlMs: 86_400_000, logger: signalsLogger }),
    },
  };
}
