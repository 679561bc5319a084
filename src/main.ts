import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { configFromEnvironment, redactUrl, type Config } from './config/index.js';
import { createContextFactory } from './context/context.js';
import { createMemoryCache } from './infra/cache/memory.js';
import { createRedisCache } from './infra/cache/redis.js';
import { withFallback } from './infra/cache/fallback.js';
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
import { resilientFetches, type ResilientProvider } from './infra/market-data/resilient.js';
import type { Bar, MarketDataProvider } from './infra/market-data/market-data.js';
import { DEFAULT_SYNTHETIC_UNIVERSE, createSyntheticMarket } from './infra/market-data/synthetic.js';
import { syntheticFeed, type MarketFeed } from './infra/market-data/feed.js';
import { createReplay } from './infra/market-data/replay.js';
import { createAlpacaFeed, type AlpacaFeed } from './infra/market-data/alpaca.js';
import { createVendorHttpClient } from './infra/market-data/vendor-http.js';
import { createLocalInterest, createRedisInterest } from './infra/coordination/interest.js';
import { createLocalLease, createRedisLease } from './infra/coordination/lease.js';
import { createLocalMarks, createRedisMarks } from './infra/coordination/marks.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from './infra/pubsub/pubsub.js';
import { dateSafeJson } from './shared/date-safe-json.js';
import { connectRedis, type RedisConnections } from './infra/redis/redis.js';
import { ApiKeysRepository, ApiKeysService, apiKeysHealth, createAuthenticator, revocationsOver } from './modules/access/index.js';
import { AuditLog } from './modules/audit/index.js';
import { createBacktestModule } from './modules/backtest/index.js';
import { ExplanationService, ExplanationsRepository } from './modules/explanations/index.js';
import { HealthService } from './modules/health/index.js';
import {
  HistoryQueryService,
  HistoryReadRepository,
  HistoryRepository,
  applyHistoryRetention,
  HistoryWriter,
  OutcomesRepository,
  OutcomesService,
  historyOfPredictions,
} from './modules/history/index.js';
import { MetricsRepository, MetricsService } from './modules/metrics/index.js';
import { ModelLifecycle, ModelRegistry, ModelServingRepository, ModelsService } from './modules/models/index.js';
import { PointInTimePredictions, PredictionService, type CachedFeatures } from './modules/predictions/index.js';
import { SignalsMonitor, SignalsRepository, SignalsService, signalsBus } from './modules/signals/index.js';
import { buildGatewaySchema } from './schema/build-schema.js';
import { createAdmission } from './server/admission.js';
import { INFLIGHT_MAX_QUEUE, InflightBudget } from './server/inflight.js';
import { createGatewayServer } from './server/server.js';
import type { HealthCheck } from './shared/health.js';
import { VERSION } from './shared/version.js';
import { withDeadline } from './shared/deadline.js';
import { Lifecycle, shutdownBudget } from './shared/lifecycle.js';

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
  /** Fills in realized outcomes (periodically when OUTCOMES_INTERVAL_MS > 0; callable on new bars). */
  readonly outcomes: OutcomesService;
  /** Live signals: the subscriber side (every instance) and the monitor (runs where the lease is held). */
  readonly signals: { readonly service: SignalsService; readonly monitor: SignalsMonitor; readonly feed: MarketFeed | undefined };
  /** Drains and releases everything; resolves when the process may exit. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds the infrastructure the configuration asks for, hands it to the
 * modules, and starts serving. Nothing else in the code base creates a pool, a connection or a server.
 */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  const started = performance.now();
  const budget = shutdownBudget(config.shutdownTimeoutMs);
  const lifecycle = new Lifecycle({ logger, stepMs: budget.stepMs });
  try {
    if (config.tracing) {
      const tracing = await startTracing({ endpoint: config.tracing.otlpEndpoint, serviceName: 'sibyl', version: VERSION });
      // Pushed first, so released last: spans of the shutdown itself are still exported.
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
    await applyHistoryRetention(database, config.history.retentionDays, logger.child({ component: 'history' }));

    let redis: RedisConnections | undefined;
    if (config.redis) {
      redis = await connectRedis({ url: config.redis.url, logger });
      lifecycle.add({ name: 'redis', close: () => redis!.close() });
      logger.info({ redis: redactUrl(config.redis.url) }, 'redis connected');
    }
    const keyPrefix = config.keyPrefix;
    // With Redis, an outage degrades to in-process cache and events (see fallback.ts and pubsub.ts), not to errors.
    const cache = redis
      ? withFallback(
          createRedisCache({ redis: redis.command, keyPrefix, logger }),
          createMemoryCache(),
          () => redis!.command.status === 'ready',
        )
      : createMemoryCache();
    const events = redis
      ? createRedisEventBus({
          publisher: redis.publisher,
          subscriber: redis.subscriber,
          keyPrefix,
          logger: logger.child({ component: 'events' }),
        })
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
        recordSpan('inference.run', seconds, {
          'sibyl.strategy': manifest.strategy,
          'sibyl.version': manifest.version,
          'sibyl.rows': rows,
        });
      },
    });
    lifecycle.add({ name: 'models', close: () => registry.close() });
    // The active version of each strategy comes from the database, so every instance serves the same one.
    const servingRecords = new ModelServingRepository(database.db);
    const modelLifecycle = new ModelLifecycle({
      registry,
      repository: servingRecords,
      events,
      logger: logger.child({ component: 'models' }),
      rescanIntervalMs: config.modelsRescanIntervalMs,
    });
    await modelLifecycle.start();
    lifecycle.add({ name: 'model lifecycle', close: () => modelLifecycle.close() });
    // A change published while the subscriber was disconnected is lost: re-read the record on reconnect.
    redis?.subscriber.on(
      'ready',
      () =>
        void modelLifecycle
          .sync('redis reconnected')
          .catch((error: unknown) => logger.warn({ err: error }, 'model sync after reconnect failed')),
    );

    const { market, feed, vendor, release: releaseVendor } = await chooseMarket(database, config, logger);
    if (releaseVendor) lifecycle.add({ name: 'market vendor', close: releaseVendor });
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
    lifecycle.add({ name: 'history', close: () => history.close(), timeoutMs: budget.historyMs + budget.stepMs });

    // Outermost first: requests coalesce into one fetch; a fetch goes through the breaker (serving the
    // last good bars as stale while it is open); only calls that reach the provider are counted.
    const resilientMarket = resilientFetches(
      countingFetches(market, (provider) => metrics.marketFetchesTotal.inc({ provider })),
      {
        timeoutMs: config.marketFetch.timeoutMs,
        retries: config.marketFetch.retries,
        backoffMs: 50,
        breaker: { errorThresholdPercentage: 50, resetTimeoutMs: config.marketFetch.breakerResetMs, volumeThreshold: 5 },
        lastGoodEntries: 20_000,
        logger: logger.child({ component: 'market' }),
      },
    );
    const breakerGauge = { closed: 0, 'half-open': 1, open: 2 } as const;
    metrics.marketBreakerState.set({ provider: market.name }, 0);
    resilientMarket.onBreakerStateChange((state) => metrics.marketBreakerState.set({ provider: market.name }, breakerGauge[state]));
    lifecycle.add({ name: 'market breaker', close: async () => resilientMarket.shutdown() });

    const count = (tier: string, result: 'hit' | 'miss', n: number) => metrics.cacheRequestsTotal.inc({ tier, result }, n);
    const predictions = new PredictionService({
      market: coalescingFetches(resilientMarket, config.marketFetch),
      registry,
      caches: {
        // Bars carry Dates, which must survive a trip through Redis.
        market: new CacheTier<Bar[]>(cache, 'market', config.cacheTtlMs.market, count, barsCodec),
        features: new CacheTier<CachedFeatures>(cache, 'features', config.cacheTtlMs.features, count),
        predictions: new CacheTier<number>(cache, 'predictions', config.cacheTtlMs.predictions, count),
      },
      maxSymbolsPerRequest: config.predictions.maxSymbolsPerRequest,
      logger: logger.child({ component: 'predictions' }),
      sink: historyOfPredictions(history),
    });
    const models = new ModelsService(registry, modelLifecycle);
    // Past bars straight from the store (no cache, no breaker's stale answers), never recorded in history.
    const backtests = createBacktestModule({
      market: countingFetches(market, (provider) => metrics.marketFetchesTotal.inc({ provider })),
      registry,
    });
    const pointInTime = new PointInTimePredictions({
      market: countingFetches(market, (provider) => metrics.marketFetchesTotal.inc({ provider })),
      registry,
      logger: logger.child({ component: 'predictions.as-of' }),
      recordedActiveAt: (strategy, time) => servingRecords.activeAt(strategy, time),
    });
    const explanations = new ExplanationService(new ExplanationsRepository(database.db), logger.child({ component: 'explanations' }));
    const outcomes = new OutcomesService(
      new OutcomesRepository(database.db),
      countingFetches(market, (provider) => metrics.marketFetchesTotal.inc({ provider })),
      logger.child({ component: 'outcomes' }),
    );
    if (config.outcomes.intervalMs > 0) lifecycle.add({ name: 'outcomes', close: outcomes.schedule(config.outcomes.intervalMs) });
    const historyQueries = new HistoryQueryService(
      new HistoryReadRepository(database.db, { rollups: !database.timescale }),
      market,
      config.predictions.maxSymbolsPerRequest,
    );
    const modelMetrics = new MetricsService(new MetricsRepository(database.db), (strategy) => registry.active(strategy)?.manifest.version, {
      trainingBaseRate: (strategy, version) => registry.find(strategy, version)?.manifest.offlineMetrics.trainingBaseRate,
      replicates: config.metricsEstimates.replicates,
      maxRows: config.metricsEstimates.maxRows,
    });

    // Live signals. With Redis, what subscribers want and who runs the monitor are shared between
    // instances; without it this process is the only instance, and holds the monitor itself.
    const signalsLogger = logger.child({ component: 'signals' });
    const interest = redis
      ? createRedisInterest({
          redis: redis.command,
          key: `${keyPrefix}signals:interest`,
          refreshMs: Math.max(100, Math.floor(config.signals.leaseMs / 3)),
          logger: signalsLogger,
        })
      : createLocalInterest();
    const lease = redis
      ? createRedisLease({
          redis: redis.command,
          key: `${keyPrefix}signals:monitor`,
          ttlMs: config.signals.leaseMs,
          logger: signalsLogger,
          // While Redis is down events reach only local subscribers, so each instance serves its own.
          aloneWhenUnreachable: true,
          sharedReady: () => redis!.publisher.status === 'ready' && redis!.subscriber.status === 'ready',
        })
      : createLocalLease();
    // The last bar published per (strategy, symbol), next to the lease, for whoever holds it next.
    const marks = redis
      ? createRedisMarks({ redis: redis.command, key: `${keyPrefix}signals:published`, ttlMs: 86_400_000, logger: signalsLogger })
      : createLocalMarks();
    const bus = signalsBus(events);
    const signals = new SignalsService({
      bus,
      registry,
      predictions,
      repository: new SignalsRepository(database.db),
      market,
      interest,
      logger: signalsLogger,
      maxReplay: config.signals.maxReplay,
      onSubscriptions: (delta) => metrics.subscriptionsActive.inc(delta),
    });
    const monitor = new SignalsMonitor({
      predictions,
      strategies: () => registry.strategies(),
      interest,
      lease,
      marks,
      received: (strategy, symbol) => signals.lastReceived(strategy, symbol),
      // Interest expires after one lease period; a key missing for twice that is really gone.
      forgetAfterMs: 2 * config.signals.leaseMs,
      bus,
      recorded:
        config.signals.recordWaitMs > 0
          ? () =>
              withDeadline(
                history.flush().catch(() => undefined),
                config.signals.recordWaitMs,
              )
          : async () => undefined,
      watchlist: config.signals.watchlist,
      intervalMs: config.signals.intervalMs,
      logger: signalsLogger,
      onPublished: (strategy, count) => metrics.signalsPublishedTotal.inc({ strategy }, count),
    });
    signals.listen(registry.strategies());
    interest.start();
    monitor.start();
    if (vendor) {
      // The vendor streams what subscribers on any instance want, beyond the configured universe.
      const following = setInterval(() => {
        interest.all().then(
          (members) => vendor.follow(members.map((member) => member.slice(member.indexOf('|') + 1))),
          () => undefined, // the monitor logs an unreadable interest set; the next round retries
        );
      }, 1_000);
      following.unref();
      lifecycle.add({ name: 'vendor interest', close: async () => clearInterval(following) });
      // A vendor catching up after a gap waits for each session's signals before storing the next, so
      // they are published in order. The second tick: the first may have joined one that started
      // before the bars were stored.
      vendor.start(async () => {
        await monitor.tick();
        await monitor.tick();
      });
    } else {
      feed?.start((bars) => monitor.onBars(bars));
    }
    // Released before history (releasers run in reverse): the monitor's last tick still records.
    lifecycle.add({
      name: 'signals',
      close: async () => {
        await feed?.stop();
        await monitor.stop(); // releases the lease, so a successor need not wait for it to expire
        await signals.stop();
        await interest.stop();
      },
    });

    const checks: HealthCheck[] = [
      servingWithoutDatabase(database.health, history, market.name === 'synthetic'),
      ...(redis ? [redis.health] : []),
      modelsHealth(registry, modelLifecycle),
      marketHealth(resilientMarket, vendor),
      { name: 'history', check: async () => history.health() },
    ];
    const audit = new AuditLog(database.db);
    // Revocations reach every instance's WebSocket connections through the event bus (Redis pub/sub).
    const revocations = revocationsOver(events, (error) =>
      logger.warn({ err: error }, 'API key revocation announcement failed; open connections re-check on a timer'),
    );
    const accessLogger = logger.child({ component: 'access' });
    const apiKeys = new ApiKeysService(new ApiKeysRepository(database.db), audit, revocations, {
      remember: config.auth.keyMemory,
      onLookupFailed: (error) =>
        accessLogger.warn(
          { err: error, rememberS: config.auth.keyMemory.ttlMs / 1000 },
          'API key lookups failing: accepting keys verified recently, others get UNAVAILABLE',
        ),
      onLookupRecovered: () => accessLogger.info('API key lookups answer again; remembered keys forgotten, each is checked afresh'),
    });
    // A revocation announced by any instance also drops the key from this one's memory of verified keys.
    const stopForgetting = revocations.listen((principalId) => apiKeys.forget(principalId));
    lifecycle.add({ name: 'revocations', close: async () => stopForgetting() });
    const acceptsKeys = config.auth.mode === 'apikey' || config.auth.mode === 'apikey+jwt';
    if (acceptsKeys) checks.push(apiKeysHealth(apiKeys, config.auth.mode === 'apikey+jwt'));
    const health = new HealthService(checks, VERSION, undefined, config.health.cacheMs);
    const authenticator = await createAuthenticator(config.auth, apiKeys);
    if (config.auth.mode === 'off') {
      logger.warn('AUTH_MODE=off: access control is disabled, every caller is an admin (refused in production)');
    }
    const schema = await buildGatewaySchema({
      health,
      predictions,
      pointInTime,
      backtest: backtests.service,
      models,
      history: historyQueries,
      metrics: modelMetrics,
      apiKeys,
      signals,
    });
    const { limits } = config;
    const rateLimiter =
      limits.ratePoints > 0
        ? createRateLimiter({
            points: limits.ratePoints,
            windowSeconds: limits.rateWindowSeconds,
            keyPrefix,
            ...(redis ? { redis: redis.command } : {}),
          })
        : undefined;
    const inflight = new InflightBudget(limits.inflightCostBudget, { maxWaitMs: limits.inflightQueueMs, maxQueue: INFLIGHT_MAX_QUEUE });
    const server = await createGatewayServer({
      schema,
      createContext: createContextFactory({ predictions, pointInTime, explanations, history: historyQueries }),
      health,
      healthRateLimitPerSecond: config.health.rateLimitPerSecond,
      metrics,
      logger,
      isProduction: config.isProduction,
      introspection: config.graphql.introspection,
      landingPage: config.graphql.landingPage,
      maxSubscriptionsPerConnection: config.ws.maxSubscriptionsPerConnection,
      authenticator,
      revocations,
      credentialRecheckMs: config.ws.credentialRecheckMs,
      keepAliveMs: config.ws.keepAliveMs,
      trustProxy: config.trustProxy,
      admission: createAdmission({
        schema,
        maxCost: limits.maxCost,
        maxNodes: limits.maxNodes,
        maxVariablesDepth: limits.maxVariablesDepth,
        maxListSize: config.predictions.maxSymbolsPerRequest,
        rateLimiter,
        inflight,
        authEnabled: config.auth.mode !== 'off',
      }),
      inflight,
      limits,
      corsOrigins: config.corsOrigins,
      metricsToken: config.metricsToken,
      webApp: config.webApp,
    });
    const { port } = await server.listen(config.host, config.port);
    logger.info(
      {
        port,
        host: config.host,
        database: database.engine,
        redis: Boolean(redis),
        market: market.name,
        feed: feed?.name,
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
      lifecycle: modelLifecycle,
      history,
      outcomes,
      signals: { service: signals, monitor, feed },
      stop() {
        stopping ??= (async () => {
          try {
            await server.close(budget.drainMs);
          } finally {
            await lifecycle.stop();
          }
        })();
        return stopping;
      },
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}

const barsCodec: Codec<Bar[]> = { encode: (bars) => dateSafeJson.stringify(bars), decode: (text) => dateSafeJson.parse(text) as Bar[] };

/**
 * Stored bars are the truth when there are any; only an empty store falls back to the synthetic market
 * (so a fresh machine serves predictions), and nothing synthetic is ever written to the store: the
 * synthetic market is reproducible from its seed, and if its bars were stored, the next start would
 * find "stored bars" and serve a frozen copy of an invented market as if it were real data (and train
 * and evaluate on it). Bars from a real feed go to the store (see createIngestFeed in feed.ts).
 *
 * The feed says when new bars arrive: the synthetic market's ticks, or a replay of stored bars when
 * MARKET_REPLAY_FROM is set. Stored bars without replay have no feed here (imports are batch jobs);
 * the signals monitor's interval covers them, and a vendor feed would plug in as an ingest feed.
 */
async function chooseMarket(
  database: Database,
  config: Config,
  logger: Logger,
): Promise<{ market: MarketDataProvider; feed?: MarketFeed; vendor?: AlpacaFeed; release?: () => Promise<void> }> {
  const repository = new BarsRepository(database.db);
  const provider = config.marketProvider;
  if (provider.kind === 'alpaca') {
    const vendorLogger = logger.child({ component: 'market' });
    const http = createVendorHttpClient({
      name: 'alpaca',
      timeoutMs: 10_000,
      retries: 3,
      backoffMs: 500,
      breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 30_000, volumeThreshold: 3 },
      logger: vendorLogger,
    });
    const symbols = provider.symbols ?? [...new Set([...config.signals.watchlist, ...DEFAULT_SYNTHETIC_UNIVERSE])];
    const vendor = createAlpacaFeed({ ...provider, symbols, store: repository, http, logger: vendorLogger });
    logger.info(
      { symbols: symbols.length, feed: provider.feed, backfillDays: provider.backfillDays },
      'market data: Alpaca, backfilling into the bars store',
    );
    // Start-up waits for the backfill, but not for a vendor that hangs (4 attempts of 10 s): after 15 s
    // it goes on in the background. A refusal is logged and in readiness; whatever is stored is served.
    if ((await withDeadline(vendor.backfill(), 15_000)) === 'timeout') {
      logger.warn('market data: the Alpaca backfill is taking over 15 s; starting anyway, it goes on in the background');
    }
    return {
      market: { ...createBarsStoreProvider(repository), name: 'alpaca' },
      feed: vendor,
      vendor,
      release: async () => {
        await vendor.stop();
        http.shutdown();
      },
    };
  }
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
    return { market: replay.provider, feed: replay.feed };
  }
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
  return { market: synthetic, ...(config.synthetic.tickMs > 0 && { feed: syntheticFeed(synthetic, config.synthetic.tickMs) }) };
}

/**
 * At run time (migrations ran at start-up) an unreachable database makes the instance `degraded`, not
 * `down`: predictions are still served (from the synthetic market, or from the last good bars marked
 * `stale` while the market-data breaker is open) and history rows wait in the writer's buffer and
 * spill files. HTTP 200, so load balancers keep routing prediction traffic to it; with every instance
 * sharing one database, 503 would turn a database outage into a total one.
 */
function servingWithoutDatabase(check: HealthCheck, history: HistoryWriter, synthetic: boolean): HealthCheck {
  return {
    name: check.name,
    async check() {
      const result = await check.check();
      if (result.status !== 'down') return result;
      const { bufferedRows, spilledRows } = history.state;
      return {
        status: 'degraded',
        detail:
          `${result.detail ?? 'unreachable'}; predictions still served (${synthetic ? 'synthetic market' : 'last good bars, marked stale'}); ` +
          `history rows waiting: ${bufferedRows} in memory, ${spilledRows} on disk`,
      };
    },
  };
}

/**
 * The market-data breaker: open means predictions come from the last good bars (`stale: true`), which
 * is degraded service, not an outage, so the instance stays ready.
 */
function marketHealth(market: ResilientProvider, vendor?: Pick<AlpacaFeed, 'health'>): HealthCheck {
  return {
    name: 'market',
    async check() {
      const state = market.breakerState;
      const store =
        state === 'closed'
          ? { status: 'ok' as const, detail: `${market.name}: answering` }
          : { status: 'degraded' as const, detail: `${market.name}: circuit ${state}; serving last good bars as stale` };
      if (!vendor) return store;
      const feed = vendor.health();
      return {
        status: feed.status === 'ok' ? store.status : 'degraded',
        detail: state === 'closed' ? feed.detail : `${feed.detail}; bars store circuit ${state}`,
      };
    },
  };
}

/**
 * Ready when every known strategy has a version to serve; refused versions, or an instance that cannot
 * serve the recorded active version, make it degraded (still ready: it serves what it can).
 */
function modelsHealth(registry: ModelRegistry, lifecycle: ModelLifecycle): HealthCheck {
  return {
    name: 'models',
    async check() {
      const loaded = registry.strategies().map((s) => {
        const serving = registry.serving(s)!;
        return `${s}@${serving.active.manifest.version}${serving.shadow ? ` (shadow ${serving.shadow.manifest.version})` : ''}`;
      });
      const refused = registry.refused.map((r) => `${r.directory}: ${r.reason}`);
      const problems = [...lifecycle.problems()].map(([strategy, problem]) => `${strategy}: ${problem}`);
      if (loaded.length === 0)
        return { status: 'down', detail: refused.length ? `none loaded; refused ${refused.join('; ')}` : 'no models found' };
      const detail = `serving ${loaded.join(', ')}${refused.length ? `; refused ${refused.length}: ${refused.join('; ')}` : ''}${problems.length ? `; ${problems.join('; ')}` : ''}`;
      return { status: refused.length || problems.length ? 'degraded' : 'ok', detail };
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
  let uncaught = false; // an uncaught exception happened: the exit code says so even after a clean stop
  const shutdown = (signal: string) => {
    if (signalled) {
      // An error thrown while shutting down must not cut the shutdown short: the history writer's
      // final flush (or spill) is still to come. Only a second signal from an operator means "now".
      if (signal === 'uncaughtException') return;
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
        process.exit(uncaught ? 1 : 0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Unhandled rejections arrive here too (origin 'unhandledRejection'), as Node raises them.
  process.on('uncaughtException', (error, origin) => {
    uncaught = true;
    logger.fatal(
      { err: error, origin, shuttingDown: signalled },
      signalled ? 'uncaught exception during shutdown; the shutdown goes on' : 'uncaught exception: shutting down',
    );
    shutdown('uncaughtException');
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void run();
}
