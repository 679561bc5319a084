import { LRUCache } from 'lru-cache';
import { familyOf, isWholeFamily, type InputName } from './inputs.js';

/** A stored answer and what it read. */
export interface Stored<T> {
  readonly value: T;
  readonly inputs: readonly InputName[];
  /** Bytes it is charged in the store's budget. */
  readonly bytes: number;
}

/**
 * Answers by key, least recently used first out when their bytes exceed `maxBytes`, with an index from
 * each input to the keys of the answers that read it, so a change evicts exactly those answers, at once.
 * An answer larger than `maxEntryBytes` is not stored.
 *
 * ```ts
 * const store = new AnswerStore<Buffer>({ maxBytes: 64 << 20, maxEntryBytes: 4 << 20 });
 * store.set('k', { value: body, inputs: ['bars:AAPL'], bytes: body.length });
 * store.evict(['bars:AAPL']);   // 'k' is gone
 * ```
 */
export class AnswerStore<T> {
  readonly #lru: LRUCache<string, Stored<T>>;
  /** input → keys of the answers that read it. */
  readonly #byInput = new Map<InputName, Set<string>>();
  readonly #maxEntryBytes: number;
  #evictions = 0;

  constructor(options: { maxBytes: number; maxEntryBytes: number }) {
    this.#maxEntryBytes = options.maxEntryBytes;
    this.#lru = new LRUCache<string, Stored<T>>({
      maxSize: options.maxBytes,
      sizeCalculation: (stored, key) => stored.bytes + key.length * 2,
      // Called for every way an entry leaves (evicted for room, replaced, deleted, cleared): the index follows.
      dispose: (stored, key) => this.#unindex(key, stored.inputs),
    });
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  /** Answers that left because an input changed (not for room). */
  get evictions(): number {
    return this.#evictions;
  }

  get(key: string): T | undefined {
    return this.#lru.get(key)?.value;
  }

  /** Stores `stored` under `key`; false when it is too large to keep. */
  set(key: string, stored: Stored<T>): boolean {
    if (stored.bytes + key.length * 2 > Math.min(this.#maxEntryBytes, this.#lru.maxSize)) return false;
    this.#lru.set(key, stored);
    if (this.#lru.peek(key) !== stored) return false;
    for (const input of stored.inputs) {
      let keys = this.#byInput.get(input);
      if (!keys) this.#byInput.set(input, (keys = new Set()));
      keys.add(key);
    }
    return true;
  }

  /**
   * Evicts every answer that read one of `changed`: the input itself and the `family:*` of its family;
   * for a whole family (`bars:*`, `history`), every input of the family.
   */
  evict(changed: readonly InputName[]): void {
    const hit = new Set<InputName>();
    for (const input of changed) {
      const family = familyOf(input);
      if (isWholeFamily(input)) {
        for (const known of this.#byInput.keys()) if (familyOf(known) === family) hit.add(known);
      } else {
        hit.add(input);
        hit.add(`${family}:*`);
      }
    }
    for (const input of hit) {
      const keys = this.#byInput.get(input);
      if (!keys) continue;
      for (const key of [...keys]) {
        if (this.#lru.delete(key)) this.#evictions++;
      }
    }
  }

  clear(): void {
    this.#evictions += this.#lru.size;
    this.#lru.clear();
  }

  #unindex(key: string, inputs: readonly InputName[]): void {
    for (const input of inputs) {
      const keys = this.#byInput.get(input);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byInput.delete(input);
    }
  }
}
