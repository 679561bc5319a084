import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger/logger.js';
import type { HealthCheck } from '../../shared/health.js';
import { redactUrl } from '../../config/index.js';

/**
 * The three Redis connections Sibyl keeps: `command` for cache and limits, and a `publisher` /
 * `subscriber` pair for events (a connection in subscriber mode can issue no other commands).
 *
 * `command` does not queue while disconnected: a cache read during an outage fails at once and is
 * treated as a miss, instead of holding a request until Redis returns. The connections reconnect by
 * themselves (backoff up to 5 s); meanwhile health says `degraded` and callers use in-process fallbacks.
 */
export interface RedisConnections {
  readonly command: Redis;
  readonly publisher: Redis;
  readonly subscriber: Redis;
  readonly health: HealthCheck;
  close(): Promise<void>;
}

export async function connectRedis(options: { url: string; logger: Logger; connectTimeoutMs?: number }): Promise<RedisConnections> {
  const logger = options.logger.child({ component: 'redis' });
  const base: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(200 * 2 ** Math.min(attempt, 6), 5_000),
  };
  const make = (role: string, extra: RedisOptions = {}) => {
    const connection = new Redis(options.url, { ...base, ...extra, connectionName: `sibyl-${role}` });
    let lastLogged = 0;
    // ioredis emits an error per failed reconnect attempt; one line every 10 s is enough to be seen.
    connection.on('error', (error: Error) => {
      const now = Date.now();
      if (now - lastLogged > 10_000) {
        lastLogged = now;
        logger.warn({ role, err: error.message }, 'redis connection error');
      }
    });
    return connection;
  };
  const command = make('command', { enableOfflineQueue: false });
  const publisher = make('publisher', { enableOfflineQueue: false });
  const subscriber = make('subscriber');
  const all = [command, publisher, subscriber];
  try {
    await Promise.all(all.map((c) => c.connect()));
  } catch (error) {
    all.forEach((c) => c.disconnect());
    throw new Error(`cannot reach Redis at ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
  }
  return {
    command,
    publisher,
    subscriber,
    health: {
      name: 'redis',
      async check() {
        // Degraded, not down: cache and events fall back to in-process while Redis is away, so the
        // instance still serves; what it loses is sharing with the other instances.
        const fallback = 'in-process cache and events meanwhile';
        const states = all.map((c) => c.status);
        if (states.some((s) => s !== 'ready')) return { status: 'degraded', detail: `connections: ${states.join(', ')}; ${fallback}` };
        try {
          const started = performance.now();
          await command.ping();
          return { status: 'ok', detail: `ping ${(performance.now() - started).toFixed(1)} ms` };
        } catch (error) {
          return { status: 'degraded', detail: `${(error as Error).message}; ${fallback}` };
        }
      },
    },
    async close() {
      await Promise.allSettled(all.map((c) => c.quit()));
      all.forEach((c) => c.disconnect());
    },
  };
}
