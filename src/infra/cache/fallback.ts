import type { Cache } from './cache.js';

/**
 * A shared cache that falls back to an in-process one while it is unreachable.
 *
 * ```ts
 * const cache = withFallback(createRedisCache(...), createMemoryCache(), () => redis.command.status === 'ready');
 * ```
 *
 * The Redis engine already turns failures into misses; without a fallback an outage would mean every
 * lookup recomputes (every market fetch, every inference). With it, an instance keeps caching for
 * itself until Redis is back, then goes back to the shared cache: entries written locally meanwhile are
 * simply not consulted any more and expire by their TTL.
 */
export function withFallback(primary: Cache, fallback: Cache, primaryUp: () => boolean): Cache {
  const pick = () => (primaryUp() ? primary : fallback);
  return {
    engine: primary.engine,
    get: (key) => pick().get(key),
    getMany: (keys) => pick().getMany(keys),
    set: (key, value, ttlMs) => pick().set(key, value, ttlMs),
    setMany: (entries, ttlMs) => pick().setMany(entries, ttlMs),
    delete: (key) => pick().delete(key),
  };
}
