import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { configFromEnvironment, redactUrl, type Config } from './config/index.js';
import { createContextFactory } from './context/context.js';
import { createMemoryCache } from './infra/cache/memory.js';
import { createRedisCache } from './infra/cache/redis.js';
import type { Cache } from './infra/cache/cache.js';
import { migrateToLatest, openDatabase, type Database } from './infra/db/index.js';
import { createLogger, type Logger } from './infra/logger/logger.js';
import { createRateLimiter } from './infra/limits/rate-limiter.js';
import { createMetrics } from './infra/metrics/metrics.js';
import { recordSpan, startTracing } from './infra/tracing/tracing.js';
import { CacheTier, type Codec } from './infra/cache/tier.js';
import { createOnnxEngine } from './infra/inference/onnx.js';
import { BarsRepository } from './infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from './infra/market-data/bars-store.js';
import { coalescingFetches } from './infra/market-data/coalescing.js';
import { countingFetches } from './infra/market-data/instrumented.js';
import type { Bar, MarketDataProvider } from './infra/market-data/market-data.js';
import { DEFAULT_SYNTHETIC_UNIVERSE, createSyntheticMarket, type SyntheticMarket } from './infra/market-data/synthetic.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from './infra/pubsub/pubsub.js';
import { dateSafeJson } from './shared/date-safe-json.js';
import { connectRedis, type RedisConnections } from './infra/redis/redis.js';
import { ApiKeysRepository, ApiKeysService, createAuthenticator } from './modules/access/index.js';
import { AuditLog } from './modules/audit/index.js';
import { HealthService } from './modules/health/index.js';
import { HistoryRepository, HistoryWriter, toHistoryRow } from './modules/history/index.js';
import { ModelRegistry, ModelsService } from './modules/models/index.js';
import { PredictionService, priceInterval, type CachedFeatures } from './modules/predictions/index.js';
import { buildGatewaySchema } from './schema/build-schema.js';
import { createAdmission } from './server/admission.js';
import { createGatewayServer } from './server/server.js';
import type { HealthCheck } from './shared/health.js';
import { VERSION } from './shared/version.js';

/** Everything a running gateway holds, for tests and for the shutdown sequence. */
export interface RunningGateway {
  readonly port: number;
  readonly config: Config;
  readonly database: Database;
  readonly cache: Cache;
  readonly events: EventBus;
  readonly market: MarketDataProvider;
  readonly registry: ModelRegistry;
  readonly history: HistoryWriter;
  /** Drains and releases everything; resolves when the process may exit. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds the infrastructure the configuration asks for, hands it to the
 * modules, and starts serving. Nothing else in the code base creates a pool, a connection or a server.
 */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  const started = performance.now();
  // Shutdown has SHUTDOWN_TIMEOUT_MS in all before the process gives up: 40% for draining HTTP and
  // WebSocket clients, 25% for the history writer to flush (after which it saves to disk whatever it
  // could not write), and each remaining release step at most 5%. A step that hangs (a pool waiting on
  // a partitioned database) is abandoned, so the steps after it, and the writer's spill, still happen.
  const budget = {
    drainMs: Math.floor(config.shutdownTimeoutMs * 0.4),
    historyMs: Math.floor(config.shutdownTimeoutMs * 0.25),
    stepMs: Math.max(50, Math.floor(config.shutdownTimeoutMs * 0.05)),
  };
  const releasers: Array<{ name: string; close: () => Promise<void>; timeoutMs?: number }> = [];
  const release = async () => {
    for (const { name, close, timeoutMs = budget.stepMs } of releasers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        close().then(() => 'closed' as const, (error: unknown) => ({ error })),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.warn({ part: name, timeoutMs }, `${name} did not close in time; moving on`);
      else if (outcome !== 'closed') logger.warn({ part: name, err: outcome.error }, `error while closing ${name}`);
    }
    releasers.length = 0;
  };
  try {
    if (config.tracing) {
      const tracing = await startTracing({ endpoint: config.tracing.otlpEndpoint, serviceName: 'sibyl', version: VERSION });
      // Pushed first, so released last: spans of the shutdown itself are still exported.
      releasers.push({ name: 'tracing', close: () => tracing.shutdown() });
      logger.info({ endpoint: redactUrl(config.tracing.otlpEndpoint) }, 'tracing to OTLP/HTTP');
    }
    const database = await openDatabase(config.database, logger.child({ component: 'db' }));
    releasers.push({ name: 'database', close: () => database.close() });
    const { applied } = await migrateToLatest(database.db);
    logger.info(
      { engine: database.engine, version: database.serverVersion, timescale: database.timescale, migrationsApplied: applied },
      applied.length ? `database migrated (${applied.length} applied)` : 'database schema up to date',
    );

    let redis: RedisConnections | undefined;
    if (config.redis) {
      redis = await connectRedis({ url: config.redis.url, logger });
      releasers.push({ name: 'redis', close: () => redis!.close() });
      logger.info({ redis: redactUrl(config.redis.url) }, 'redis connected');
    }
    const keyPrefix = config.keyPrefix;
    const cache = redis ? createRedisCache({ redis: redis.command, keyPrefix, logger }) : createMemoryCache();
    const events = redis
      ? createRedisEventBus({ publisher: redis.publisher, subscriber: redis.subscriber, keyPrefix })
      : createMemoryEventBus({ keyPrefix });

    const metrics = createMetrics();
    const registry = await ModelRegistry.load({
      directory: config.modelsDir,
      engine: createOnnxEngine(),
      batching: config.inference,
      logger: logger.child({ component: 'models' }),
      onRun: (manifest, rows, seconds) => {
        metrics.inferenceRunsTotal.inc({ strategy: manifest.strategy, version: manifest.version });
        metrics.inferenceBatchSize.observe(rows);
        metrics.inferenceSeconds.observe(seconds);
        recordSpan('inference.run', seconds, { 'sibyl.strategy': manifest.strategy, 'sibyl.version': manifest.version, 'sibyl.rows': rows });
      },
    });
    releasers.push({ name: 'models', close: () => registry.close() });

    const { market, synthetic } = await chooseMarket(database, config, logger);
    if (synthetic && config.synthetic.tickMs > 0) {
      const ticker = setInterval(() => synthetic.advance(), config.synthetic.tickMs);
      releasers.push({ name: 'synthetic market', close: async () => clearInterval(ticker) });
    }
    const history = await HistoryWriter.open({
      repository: new HistoryRepository(database.db),
      logger: logger.child({ component: 'history' }),
      spillDir: config.history.spillDir,
      flushIntervalMs: config.history.flushIntervalMs,
      maxBufferRows: config.history.maxBufferRows,
      onRowsWritten: (n) => metrics.historyRowsWrittenTotal.inc(n),
      onBufferSize: (n) => metrics.historyBufferRows.set(n),
      closeTimeoutMs: budget.historyMs,
    });
    // Released before the database (releasers run in reverse), so the final flush still has a pool.
    releasers.push({ name: 'history', close: () => history.close(), timeoutMs: budget.historyMs + budget.stepMs });

    const count = (tier: string, result: 'hit' | 'miss', n: number) => metrics.cacheRequestsTotal.inc({ tier, result }, n);
    const predictions = new PredictionService(
      coalescingFetches(countingFetches(market, (provider) => metrics.marketFetchesTotal.inc({ provider })), config.marketFetch),
      registry,
      {
        // Bars carry Dates, which must survive a trip through Redis.
        market: new CacheTier<Bar[]>(cache, 'market', config.cacheTtlMs.market, count, barsCodec),
        features: new CacheTier<CachedFeatures>(cache, 'features', config.cacheTtlMs.features, count),
        predictions: new CacheTier<number>(cache, 'predictions', config.cacheTtlMs.predictions, count),
      },
      config.predictions.maxSymbolsPerRequest,
      logger.child({ component: 'predictions' }),
      // History keeps the interval at the contract's default level (0.95), the one coverage is measured on.
      (records) => void history.record(records.map((r) => toHistoryRow(r, priceInterval(r, 0.95)))),
    );
    const models = new ModelsService(registry);

    const checks: HealthCheck[] = [
      database.health,
      ...(redis ? [redis.health] : []),
      modelsHealth(registry),
      { name: 'history', check: async () => history.health() },
    ];
    const health = new HealthService(checks, VERSION);
    const audit = new AuditLog(database.db);
    const apiKeys = new ApiKeysService(new ApiKeysRepository(database.db), audit);
    const authenticator = await createAuthenticator(config.auth, apiKeys);
    if (config.auth.mode === 'off') {
      logger.warn('AUTH_MODE=off: access control is disabled, every caller is an admin (refused in production)');
    }
    const schema = await buildGatewaySchema({ health, predictions, models, apiKeys });
    const { limits } = config;
    const rateLimiter =
      limits.ratePoints > 0
        ? createRateLimiter({ points: limits.ratePoints, windowSeconds: limits.rateWindowSeconds, keyPrefix, ...(redis ? { redis: redis.command } : {}) })
        : undefined;
    const server = await createGatewayServer({
      schema,
      createContext: createContextFactory({ predictions }),
      health,
      metrics,
      logger,
      isProduction: config.isProduction,
      introspection: config.graphql.introspection,
      landingPage: config.graphql.landingPage,
      authenticator,
      admission: createAdmission({ schema, maxCost: limits.maxCost, maxListSize: config.predictions.maxSymbolsPerRequest, rateLimiter, authEnabled: config.auth.mode !== 'off' }),
      limits,
      corsOrigins: config.corsOrigins,
      metricsToken: config.metricsToken,
    });
    const { port } = await server.listen(config.host, config.port);
    logger.info(
      {
        port,
        host: config.host,
        database: database.engine,
        redis: Boolean(redis),
        market: market.name,
        strategies: registry.strategies(),
        auth: config.auth.mode,
        rateLimit: rateLimiter ? `${limits.ratePoints}/${limits.rateWindowSeconds}s (${rateLimiter.engine})` : 'off',
        startupMs: Math.round(performance.now() - started),
      },
      `sibyl ${VERSION} listening on http://${config.host}:${port}/graphql`,
    );

    let stopping: Promise<void> | undefined;
    return {
      port,
      config,
      database,
      cache,
      events,
      market,
      registry,
      history,
      stop() {
        stopping ??= (async () => {
          try {
            await server.close(budget.drainMs);
          } finally {
            await release();
          }
        })();
        return stopping;
      },
    };
  } catch (error) {
    await release();
    throw error;
  }
}

const barsCodec: Codec<Bar[]> = { encode: (bars) => dateSafeJson.stringify(bars), decode: (text) => dateSafeJson.parse(text) as Bar[] };

/**
 * Stored bars are the truth when there are any; only an empty store falls back to the synthetic market
 * (so a fresh machine serves predictions), and nothing synthetic is ever written to the store.
 */
async function chooseMarket(
  database: Database,
  config: Config,
  logger: Logger,
): Promise<{ market: MarketDataProvider; synthetic?: SyntheticMarket }> {
  const repository = new BarsRepository(database.db);
  const stored = await repository.listSymbols();
  if (stored.length > 0) {
    logger.info({ symbols: stored.length }, 'market data: stored bars');
    return { market: createBarsStoreProvider(repository) };
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
  return { market: synthetic, synthetic };
}

/** Ready when every known strategy has a version to serve; refused versions make it degraded. */
function modelsHealth(registry: ModelRegistry): HealthCheck {
  return {
    name: 'models',
    async check() {
      const loaded = registry.strategies().map((s) => `${s}@${registry.active(s)!.manifest.version}`);
      const refused = registry.refused.map((r) => `${r.directory}: ${r.reason}`);
      if (loaded.length === 0) return { status: 'down', detail: refused.length ? `none loaded; refused ${refused.join('; ')}` : 'no models found' };
      const detail = `serving ${loaded.join(', ')}${refused.length ? `; refused ${refused.length}: ${refused.join('; ')}` : ''}`;
      return { status: refused.length ? 'degraded' : 'ok', detail };
    },
  };
}

/** Process entry: config → logger → gateway; SIGTERM/SIGINT drain and exit 0, or 1 if draining fails. */
async function run(): Promise<void> {
  const config = configFromEnvironment();
  if (!config) process.exit(1);
  const logger = createLogger(config.log);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
    process.exitCode = 1;
    logger.flush();
    // Let the log reach its destination, then make sure no leftover handle keeps the process alive.
    setTimeout(() => process.exit(1), 200).unref();
    return;
  }

  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    logger.info({ signal }, 'shutting down: draining connections');
    const hardStop = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1_000);
    hardStop.unref();
    gateway.stop().then(
      () => {
        logger.info('shutdown complete');
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception: shutting down');
    shutdown('uncaughtException');
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void run();
}
