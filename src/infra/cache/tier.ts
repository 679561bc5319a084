import type { Cache } from './cache.js';

/**
 * One named tier of cached JSON values (market, features, predictions) over a {@link Cache} engine,
 * counting hits and misses. A TTL of 0 turns the tier off: every lookup is a miss and nothing is stored,
 * which is how the cold-path benchmark runs.
 */
export class CacheTier<T> {
  constructor(
    private readonly cache: Cache,
    readonly name: string,
    private readonly ttlMs: number,
    private readonly count: (tier: string, result: 'hit' | 'miss', n: number) => void,
    private readonly codec: { encode(value: T): string; decode(text: string): T } = { encode: JSON.stringify, decode: JSON.parse },
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  async getMany(keys: readonly string[]): Promise<Array<T | undefined>> {
    if (!this.enabled || keys.length === 0) {
      if (keys.length) this.count(this.name, 'miss', keys.length);
      return keys.map(() => undefined);
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
    await this.cache.setMany(
      entries.map(({ key, value }) => ({ key: `${this.name}:${key}`, value: this.codec.encode(value) })),
      this.ttlMs,
    );
  }
}
