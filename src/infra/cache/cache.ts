/**
 * A string key/value cache with per-entry time to live. Engines: `memory.ts` (in-process LRU) and
 * `redis.ts` (shared between instances). Callers serialize their own values.
 *
 * A cache never fails its caller: an engine that cannot answer reports a miss (and counts it), so an
 * outage of Redis costs recomputation, not errors.
 */
export interface Cache {
  readonly engine: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  /** One round trip for many keys; the result has one entry per key, in order. */
  getMany(keys: readonly string[]): Promise<Array<string | undefined>>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  setMany(entries: ReadonlyArray<{ key: string; value: string }>, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
}
