import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** What one charge against a key's budget decided; the numbers behind the RateLimit headers. */
export interface RateDecision {
  readonly allowed: boolean;
  /** Points per window. */
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets. */
  readonly resetSeconds: number;
}

/**
 * A budget of points per key per window (fixed window). Engines: in-process, or Redis shared by every
 * instance with an in-process insurance limiter that takes over, per instance, whenever a Redis call
 * fails or the connection is not ready, so limits keep holding (if per instance) during an outage
 * and requests are never failed because of the limiter's store.
 */
export interface RateLimiter {
  readonly engine: 'memory' | 'redis';
  readonly limit: number;
  consume(key: string, points: number): Promise<RateDecision>;
}

export interface RateLimiterOptions {
  points: number;
  windowSeconds: number;
  keyPrefix: string;
  /** A connection that does not queue while disconnected (see infra/redis). */
  redis?: Redis;
}

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const common = { points: options.points, duration: options.windowSeconds, keyPrefix: `${options.keyPrefix}rate` };
  const memory = new RateLimiterMemory(common);
  const store: RateLimiterAbstract = options.redis
    ? new RateLimiterRedis({ ...common, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory })
    : memory;
  return {
    engine: options.redis ? 'redis' : 'memory',
    limit: options.points,
    async consume(key, points) {
      try {
        const res = await store.consume(key, Math.max(1, Math.ceil(points)));
        return decision(true, options.points, res);
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) return decision(false, options.points, rejection);
        throw rejection; // only when there is no insurance limiter and the store failed: not our configuration
      }
    },
  };
}

function decision(allowed: boolean, limit: number, res: RateLimiterRes): RateDecision {
  return { allowed, limit, remaining: Math.max(0, res.remainingPoints), resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
}
