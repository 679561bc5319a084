import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { ConfigError, loadConfig, redactUrl, type Config } from './config/index.js';
import { createContextFactory } from './context/context.js';
import { createMemoryCache } from './infra/cache/memory.js';
import { createRedisCache } from './infra/cache/redis.js';
import type { Cache } from './infra/cache/cache.js';
import { migrateToLatest, openDatabase, type Database } from './infra/db/index.js';
import { createLogger, type Logger } from './infra/logger/logger.js';
import { createMetrics } from './infra/metrics/metrics.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from './infra/pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from './infra/redis/redis.js';
import { HealthService } from './modules/health/index.js';
import { buildGatewaySchema } from './schema/build-schema.js';
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
  /** Drains and releases everything; resolves when the process may exit. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds the infrastructure the configuration asks for, hands it to the
 * modules, and starts serving. Nothing else in the code base creates a pool, a connection or a server.
 */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  const started = performance.now();
  const releasers: Array<() => Promise<void>> = [];
  const release = async () => {
    for (const close of releasers.reverse()) await close().catch((error) => logger.warn({ err: error }, 'error while releasing'));
    releasers.length = 0;
  };
  try {
    const database = await openDatabase(config.database, logger.child({ component: 'db' }));
    releasers.push(() => database.close());
    const { applied } = await migrateToLatest(database.db);
    logger.info(
      { engine: database.engine, version: database.serverVersion, timescale: database.timescale, migrationsApplied: applied },
      applied.length ? `database migrated (${applied.length} applied)` : 'database schema up to date',
    );

    let redis: RedisConnections | undefined;
    if (config.redis) {
      redis = await connectRedis({ url: config.redis.url, logger });
      releasers.push(() => redis!.close());
      logger.info({ redis: redactUrl(config.redis.url) }, 'redis connected');
    }
    const keyPrefix = config.keyPrefix;
    const cache = redis ? createRedisCache({ redis: redis.command, keyPrefix, logger }) : createMemoryCache();
    const events = redis
      ? createRedisEventBus({ publisher: redis.publisher, subscriber: redis.subscriber, keyPrefix })
      : createMemoryEventBus({ keyPrefix });

    const metrics = createMetrics();
    const checks: HealthCheck[] = [database.health, ...(redis ? [redis.health] : [])];
    const health = new HealthService(checks, VERSION);
    const schema = await buildGatewaySchema({ health });
    const server = await createGatewayServer({
      schema,
      createContext: createContextFactory(),
      health,
      metrics,
      logger,
      isProduction: config.isProduction,
      introspection: config.graphql.introspection,
      landingPage: config.graphql.landingPage,
    });
    const { port } = await server.listen(config.host, config.port);
    logger.info(
      { port, host: config.host, database: database.engine, redis: Boolean(redis), startupMs: Math.round(performance.now() - started) },
      `sibyl ${VERSION} listening on http://${config.host}:${port}/graphql`,
    );

    let stopping: Promise<void> | undefined;
    return {
      port,
      config,
      database,
      cache,
      events,
      stop() {
        stopping ??= (async () => {
          try {
            await server.close(config.shutdownTimeoutMs);
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

/** Process entry: config → logger → gateway; SIGTERM/SIGINT drain and exit 0, or 1 if draining fails. */
async function run(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
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
