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
  /** Invalidations so far, and the count at each key's latest one (see {@link invalidate}). */
  #invalidations = 0;
  readonly #invalidatedAt = new Map<string, number>();
  #allInvalidatedAt = 0;

  /**
   * `local`: keep values in this process even when the shared engine is Redis, so that
   * {@link invalidate} reaches every copy at once (the market tier, when the response cache is on).
   */
  constructor(
    private readonly cache: Cache,
    readonly name: string,
    private readonly ttlMs: number,
    private readonly count: (tier: string, result: 'hit' | 'miss', n: number) => void,
    private readonly codec: Codec<T> = { encode: JSON.stringify, decode: JSON.parse },
    maxLocalEntries = 50_000,
    options: { local?: boolean } = {},
  ) {
    if ((cache.engine === 'memory' || options.local) && ttlMs > 0)
      this.#local = new LRUCache<string, T>({ max: maxLocalEntries, ttl: ttlMs });
  }

  /** A mark to pass to {@link setMany} as `unlessInvalidatedSince`, taken before the values are read from their source. */
  invalidations(): number {
    return this.#invalidations;
  }

  /**
   * Drops `keys` now, and refuses the values of {@link setMany} calls whose mark is older: a value read
   * from its source before the invalidation, stored after it, would bring the old value back until its
   * TTL ran out. In-process values go at once; with Redis, the shared copies are deleted too (in the
   * background), and another instance's late write is its own invalidation's to refuse.
   */
  invalidate(keys: readonly string[]): void {
    if (keys.length === 0) return;
    const at = ++this.#invalidations;
    for (const key of keys) {
      this.#invalidatedAt.set(key, at);
      if (this.#local) this.#local.delete(key);
      else void this.cache.delete(`${this.name}:${key}`);
    }
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

  /** {@link invalidate} of every key: in-process values only (the shared engine has no "every key of a tier"). */
  invalidateAll(): void {
    this.#allInvalidatedAt = ++this.#invalidations;
    this.#invalidatedAt.clear();
    this.#local?.clear();
  }

  async setMany(entries: ReadonlyArray<{ key: string; value: T }>, options: { unlessInvalidatedSince?: number } = {}): Promise<void> {
    if (!this.enabled || entries.length === 0) return;
    const since = options.unlessInvalidatedSince;
    if (since !== undefined && since < this.#invalidations) {
      if (since < this.#allInvalidatedAt) return;
      entries = entries.filter(({ key }) => (this.#invalidatedAt.get(key) ?? 0) <= since);
    }
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
