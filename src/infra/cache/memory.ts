import { LRUCache } from 'lru-cache';
import type { Cache } from './cache.js';

/** In-process cache: an LRU bounded by entry count, with per-entry TTL. */
export function createMemoryCache(options: { maxEntries?: number } = {}): Cache {
  const lru = new LRUCache<string, string>({ max: options.maxEntries ?? 50_000, ttlAutopurge: false });
  return {
    engine: 'memory',
    async get(key) {
      return lru.get(key);
    },
    async getMany(keys) {
      return keys.map((key) => lru.get(key));
    },
    async set(key, value, ttlMs) {
      lru.set(key, value, { ttl: ttlMs });
    },
    async setMany(entries, ttlMs) {
      for (const { key, value } of entries) lru.set(key, value, { ttl: ttlMs });
    },
    async delete(key) {
      lru.delete(key);
    },
  };
}
