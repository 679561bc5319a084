import { LRUCache } from 'lru-cache';
import type { Principal } from './roles.js';

/**
 * API keys the database confirmed recently, by key hash: what lets an instance go on authenticating
 * its callers while PostgreSQL is unreachable. Entries live `ttlMs` after the last successful check
 * (each check renews them), at most `max` of them (least recently used go first); `ttlMs` 0 remembers
 * nothing. Only ever consulted when the database cannot answer: while it can, every request is checked
 * there, so a revocation still acts at once.
 */
export class RememberedKeys {
  readonly #cache: LRUCache<string, Principal> | undefined;

  constructor(readonly settings: { readonly ttlMs: number; readonly max: number }) {
    this.#cache =
      settings.ttlMs > 0 ? new LRUCache({ max: settings.max, ttl: settings.ttlMs, updateAgeOnGet: false, ttlAutopurge: false }) : undefined;
  }

  remember(keyHash: string, principal: Principal): void {
    this.#cache?.set(keyHash, principal);
  }

  /** The principal a key stood for when last confirmed, unless that was more than `ttlMs` ago. */
  recall(keyHash: string): Principal | undefined {
    return this.#cache?.get(keyHash);
  }

  forgetKey(keyHash: string): void {
    this.#cache?.delete(keyHash);
  }

  /** Drops every key of `principalId` (a revocation); returns how many there were. */
  forget(principalId: string): number {
    if (!this.#cache) return 0;
    const hashes = [...this.#cache.entries()].filter(([, principal]) => principal.id === principalId).map(([hash]) => hash);
    for (const hash of hashes) this.#cache.delete(hash);
    return hashes.length;
  }

  clear(): void {
    this.#cache?.clear();
  }

  /** How many keys would be accepted right now without the database. */
  get size(): number {
    if (!this.#cache) return 0;
    let count = 0;
    for (const _ of this.#cache.keys()) count++; // skips expired entries
    return count;
  }
}
