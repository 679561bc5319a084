import { LRUCache } from 'lru-cache';
import type { Cache } from './cache.js';

export interface Codec<T> {
  encode(value: T): string;
  decode(text: string): T;
}

/**
 * One named tier of cached values (market, features, predictions), counting hits and misses. A TTL of
 * 0 turns the tier off: every lookup is a miss and nothing is stored, which is how the cold-path
 * benchmark runs.
 *
 * With the in-process engine the tier keeps the values themselves: serializing them would buy nothing
 * and cost a lot (decoding cached bar windows dominated warm requests:
 * docs/decisions/hot-path-measurements.md). With Redis, values cross the wire through `codec`. Cached
 * values are shared between requests, so callers must treat them as read-only.
 */
export class CacheTier<T extends object | number | string> {
  readonly #local: LRUCache<string, T> | undefined;

  constructor(
    private readonly cache: Cache,
    readonly name: string,
    private readonly ttlMs: number,
    private readonly count: (tier: string, result: 'hit' | 'miss', n: number) => void,
    private readonly codec: Codec<T> = { encode: JSON.stringify, decode: JSON.parse },
    maxLocalEntries = 50_000,
  ) {
    if (cache.engine === 'memory' && ttlMs > 0) this.#local = new LRUCache<string, T>({ max: maxLocalEntries, ttl: ttlMs });
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  async getMany(keys: readonly string[]): Promise<Array<T | undefined>> {
    if (!this.enabled || keys.length === 0) {
      if (keys.length) this.count(this.name, 'miss', keys.length);
      return keys.map(() => undefined);
    }
    if (this.#local) {
      const values = keys.map((key) => this.#local!.get(key));
      const hits = values.filter((v) => v !== undefined).length;
      if (hits) this.count(this.name, 'hit', hits);
      if (keys.length - hits) this.count(this.name, 'miss', keys.length - hits);
      return values;
    }
    const raw = await this.cache.getMany(keys.map((k) => `${this.name}:${k}`));
    let hits = 0;
    const values = raw.map((text) => {
      if (text === undefined) return undefined;
      try {
        const value = this.codec.decode(text);
        hits++;
        return value;
      } catch {
        return undefined; // an unreadable entry (e.g. written by another version) is a miss, not an error
      }
    });
    if (hits) this.count(this.name, 'hit', hits);
    if (keys.length - hits) this.count(this.name, 'miss', keys.length - hits);
    return values;
  }

  async setMany(entries: ReadonlyArray<{ key: string; value: T }>): Promise<void> {
    if (!this.enabled || entries.length === 0) return;
    if (this.#local) {
      for (const { key, value } of entries) this.#local.set(key, value);
      return;
    }
    await this.cache.setMany(
      entries.map(({ key, value }) => ({ key: `${this.name}:${key}`, value: this.codec.encode(value) })),
      this.ttlMs,
    );
  }
}
