import type { Redis } from 'ioredis';
import type { Logger } from '../logger/logger.js';
import type { Cache } from './cache.js';

/** Cache in Redis, shared by every instance. Keys are prefixed; failures read as misses. */
export function createRedisCache(options: { redis: Redis; keyPrefix: string; logger: Logger }): Cache {
  const { redis, keyPrefix } = options;
  const logger = options.logger.child({ component: 'cache' });
  const k = (key: string) => `${keyPrefix}cache:${key}`;
  const failed = (op: string, error: unknown) => logger.debug({ op, err: (error as Error).message }, 'redis cache unavailable');
  return {
    engine: 'redis',
    async get(key) {
      try {
        return (await redis.get(k(key))) ?? undefined;
      } catch (error) {
        failed('get', error);
        return undefined;
      }
    },
    async getMany(keys) {
      if (keys.length === 0) return [];
      try {
        return (await redis.mget(keys.map(k))).map((value) => value ?? undefined);
      } catch (error) {
        failed('mget', error);
        return keys.map(() => undefined);
      }
    },
    async set(key, value, ttlMs) {
      try {
        await redis.set(k(key), value, 'PX', Math.max(1, Math.round(ttlMs)));
      } catch (error) {
        failed('set', error);
      }
    },
    async setMany(entries, ttlMs) {
      if (entries.length === 0) return;
      try {
        const pipeline = redis.pipeline();
        for (const { key, value } of entries) pipeline.set(k(key), value, 'PX', Math.max(1, Math.round(ttlMs)));
        await pipeline.exec();
      } catch (error) {
        failed('setMany', error);
      }
    },
    async delete(key) {
      try {
        await redis.del(k(key));
      } catch (error) {
        failed('del', error);
      }
    },
  };
}
