import type { InputName } from './inputs.js';
import { AnswerStore } from './store.js';
import { InputVersions, type Change, type ChangeOrigin } from './versions.js';

/**
 * Whole answers keyed by what was asked, kept until something they read changes: never for a time to
 * live (docs/decisions/response-cache.md). This is the engine; the server decides what is asked and
 * what was read (server/response-cache/), modules and infrastructure report changes.
 *
 * ```ts
 * const cache = createResponseCache({ maxBytes: 64 << 20 });
 * const hit = cache.lookup(key);                    // undefined while unavailable
 * const started = cache.versions.now();             // before executing
 * const answer = await execute();
 * cache.store(key, answer, bytes, ['bars:AAPL'], started);  // refused if bars:AAPL changed meanwhile
 * cache.versions.changed(['bars:AAPL']);            // evicts it
 * ```
 *
 * **Availability.** With invalidations shared between instances (redis-invalidations.ts), the cache is
 * usable only while this instance can receive them: while it cannot, nothing is served from it and
 * nothing is stored (fail closed), and when it can again everything stored before is dropped, since
 * changes announced meanwhile were missed.
 */
export interface ResponseCache<T = unknown> {
  /** When inputs last changed; the changes themselves are reported here. */
  readonly versions: ChangeReporter;
  /** Whether answers may be served and stored now. */
  readonly available: boolean;
  /** The stored answer, if any and if the cache is available. */
  lookup(key: string): T | undefined;
  /**
   * Stores `value` if the cache is available and none of `inputs` changed since position `since`
   * ({@link ChangeReporter.now}, taken before the execution that produced it started). Says why not.
   */
  store(key: string, value: T, bytes: number, inputs: readonly InputName[], since: number): StoreOutcome;
  /** Turns serving off (false) or back on (true, after dropping everything stored). */
  setAvailable(available: boolean): void;
  readonly stats: ResponseCacheStats;
}

export type StoreOutcome = 'stored' | 'changed' | 'unavailable' | 'too-large';

/** What modules and infrastructure see: report changes, and read positions. */
export interface ChangeReporter {
  now(): number;
  changed(inputs: readonly InputName[], origin?: ChangeOrigin): void;
  changedAll(origin?: ChangeOrigin): void;
  writing<T>(inputs: readonly InputName[], write: () => Promise<T>): Promise<T>;
  unchangedSince(inputs: Iterable<InputName>, since: number): boolean;
  onChange(listener: (change: Change, origin: ChangeOrigin) => void): () => void;
}

export interface ResponseCacheStats {
  /** Lookups that found an answer, and those that did not (unavailable included). */
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly bytes: number;
  /** Answers evicted because something they read changed. */
  readonly evictions: number;
}

export interface ResponseCacheOptions {
  /** RESPONSE_CACHE_MAX_MB, in bytes. */
  readonly maxBytes: number;
  /** The largest single answer kept; default an eighth of maxBytes. */
  readonly maxEntryBytes?: number;
}

export function createResponseCache<T>(options: ResponseCacheOptions): ResponseCache<T> {
  const versions = new InputVersions();
  const store = new AnswerStore<T>({
    maxBytes: options.maxBytes,
    maxEntryBytes: options.maxEntryBytes ?? Math.floor(options.maxBytes / 8),
  });
  let available = true;
  let hits = 0;
  let misses = 0;
  versions.onChange((change) => {
    if ('all' in change) store.clear();
    else store.evict(change.inputs);
  });
  return {
    versions,
    get available() {
      return available;
    },
    lookup(key) {
      const found = available ? store.get(key) : undefined;
      if (found === undefined) misses++;
      else hits++;
      return found;
    },
    store(key, value, bytes, inputs, since) {
      if (!available) return 'unavailable';
      if (!versions.unchangedSince(inputs, since)) return 'changed';
      return store.set(key, { value, inputs, bytes }) ? 'stored' : 'too-large';
    },
    setAvailable(next) {
      if (next === available) return;
      // Going away: what is held can no longer be trusted to be evicted in time; drop it now.
      if (!next) store.clear();
      // Coming back: whatever was stored may have missed a change; executions that started before this
      // point must not store either (changedAll moves every input past their starting position). Not a
      // change made here, so not one to announce to other instances.
      if (next) versions.changedAll('remote');
      available = next;
    },
    stats: {
      get hits() {
        return hits;
      },
      get misses() {
        return misses;
      },
      get entries() {
        return store.entries;
      },
      get bytes() {
        return store.bytes;
      },
      get evictions() {
        return store.evictions;
      },
    },
  };
}
