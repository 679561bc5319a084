import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { withTimeout } from '../../shared/deadline.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import type { AuditLog } from '../audit/index.js';
import type { ApiKeyRow, ApiKeysRepository } from './api-keys.repository.js';
import { textProblem } from './principal-id.js';
import { RememberedKeys } from './remembered-keys.js';
import type { Revocations } from './revocations.js';
import { isRole, type Principal, type Role } from './roles.js';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs) and tells apart from a JWT. */
export const API_KEY_PREFIX = 'sib_';
const KEY_SHAPE = /^sib_[A-Za-z0-9_-]{43}$/;

/** What checking a presented key found. `unchecked`: the database could not answer and the key was not remembered. */
export type KeyCheck =
  { readonly state: 'valid'; readonly principal: Principal } | { readonly state: 'unknown' } | { readonly state: 'unchecked' };

export interface ApiKeysServiceDeps extends ApiKeysOptions {
  readonly repository: ApiKeysRepository;
  readonly audit: AuditLog;
  /** Tells running instances, so WebSocket connections using the key are closed at once. */
  readonly revocations?: Pick<Revocations, 'announce'> | undefined;
}

export interface ApiKeysOptions {
  /** Recently verified keys, accepted while the database cannot answer (default: none). */
  remember?: { ttlMs: number; max: number };
  /** Called when lookups start failing (the database unreachable, most likely), once per outage. */
  onLookupFailed?: (error: unknown) => void;
  /** Called when lookups answer again after failing. */
  onLookupRecovered?: () => void;
}

/**
 * Longest a key lookup may take before it counts as failed (like the database readiness check): the
 * pool has no query timeout, and a hung database must not hang every request with it.
 */
const LOOKUP_TIMEOUT_MS = 2_000;
/**
 * While lookups fail, remembered keys are answered from memory without waiting on the database; one
 * trial lookup at a time, at most once per this period, finds out when it answers again.
 */
const TRIAL_EVERY_MS = 1_000;

/**
 * API keys: created (shown once), listed, revoked, and checked on every request.
 *
 * Stored as SHA-256, not bcrypt/argon2: those are slow on purpose to protect low-entropy passwords from
 * guessing. A key here is 256 random bits, which no amount of hashing speed makes guessable, and it is
 * checked on every request, where a deliberately slow hash would be a denial-of-service lever. A fast
 * hash still means a database leak yields no usable key.
 *
 * Every check is one lookup on the unique index of `key_hash`, so a revoked key is refused on the very
 * next request by every instance sharing the database. Keys the database confirmed recently are also
 * remembered ({@link RememberedKeys}), for one purpose only: while the database cannot answer, they are
 * still accepted (for at most the memory's TTL after their last check), instead of every caller being
 * refused. A revocation announced meanwhile drops its key from memory at once ({@link forget}); the first
 * lookup that succeeds again empties the memory, so a key revoked where this instance could not hear of
 * it is looked up afresh at its next use.
 */
export class ApiKeysService {
  readonly #memory: RememberedKeys;
  /** Whether the latest lookup (request, trial or probe) failed. */
  #unreachable = false;
  /** A trial lookup is running (see {@link TRIAL_EVERY_MS}). */
  #trialRunning = false;
  #nextTrialAt = 0;

  private readonly repository: ApiKeysRepository;
  private readonly audit: AuditLog;
  private readonly revocations: Pick<Revocations, 'announce'> | undefined;
  private readonly options: ApiKeysOptions;

  constructor({ repository, audit, revocations, ...options }: ApiKeysServiceDeps) {
    this.repository = repository;
    this.audit = audit;
    this.revocations = revocations;
    this.options = options;
    this.#memory = new RememberedKeys(options.remember ?? { ttlMs: 0, max: 1 });
  }

  /**
   * Creates a key; `key` is in the result only, never stored or logged. The key and its audit row
   * commit together or not at all.
   */
  async create(input: { name: string; role: Role; actor: string }): Promise<{ key: string; record: ApiKeyRow }> {
    const name = input.name.trim();
    const problem = textProblem(name, 100);
    if (problem) throw badUserInput(`name: 1-100 characters without control characters (it ${problem})`);
    if (!isRole(input.role)) throw badUserInput(`role: one of viewer, analyst, admin (got ${JSON.stringify(input.role)})`);
    const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record = await this.repository.transaction(async (keys, trx) => {
      const inserted = await keys.insert({
        id: randomUUID(),
        name,
        role: input.role,
        keyHash: hashKey(key),
        prefix: key.slice(0, API_KEY_PREFIX.length + 6),
        createdBy: input.actor,
      });
      await this.audit.within(trx).record({
        actor: input.actor,
        action: 'api_key.created',
        subject: inserted.id,
        detail: { name, role: input.role, prefix: inserted.prefix },
      });
      return inserted;
    });
    return { key, record };
  }

  list(): Promise<ApiKeyRow[]> {
    return this.repository.list();
  }

  /**
   * Revokes at once (see the class comment); undefined when no key has this id. The revocation and its
   * audit row commit together or not at all, and it is announced only once committed.
   */
  async revoke(id: string, actor: string): Promise<ApiKeyRow | undefined> {
    const row = await this.repository.transaction(async (keys, trx) => {
      const revoked = await keys.revoke(id);
      if (revoked)
        await this.audit
          .within(trx)
          .record({ actor, action: 'api_key.revoked', subject: revoked.id, detail: { name: revoked.name, role: revoked.role } });
      return revoked;
    });
    if (row) {
      this.forget(principalIdOf(row));
      this.revocations?.announce(principalIdOf(row));
    }
    return row;
  }

  /**
   * What the database (or, while it cannot answer, the memory of recent checks) says about `key`:
   * `valid` with its principal, `unknown` (malformed, no such key, or revoked), or `unchecked`.
   */
  async check(key: string): Promise<KeyCheck> {
    if (!KEY_SHAPE.test(key)) return { state: 'unknown' };
    const hash = hashKey(key);
    const remembered = this.#memory.recall(hash);
    if (remembered && this.#unreachable) {
      this.#trial(hash);
      return { state: 'valid', principal: remembered };
    }
    let row: ApiKeyRow | undefined;
    try {
      row = await withTimeout(this.repository.findActiveByHash(hash), LOOKUP_TIMEOUT_MS);
    } catch (error) {
      this.#lookupFailed(error);
      return remembered ? { state: 'valid', principal: remembered } : { state: 'unchecked' };
    }
    this.#lookupAnswered();
    const principal = this.#found(hash, row);
    return principal ? { state: 'valid', principal } : { state: 'unknown' };
  }

  /** Drops a revoked principal's keys from memory (revocations announced by any instance). */
  forget(principalId: string): void {
    this.#memory.forget(principalId);
  }

  /**
   * Whether keys can be checked right now: one lookup of a hash no key has, bounded by `timeoutMs`.
   * Like any lookup, an answer after failures ends the outage (and empties the memory).
   */
  async probe(timeoutMs: number): Promise<boolean> {
    try {
      await withTimeout(this.repository.findActiveByHash(NO_KEY_HASH), timeoutMs);
    } catch (error) {
      this.#lookupFailed(error);
      return false;
    }
    this.#lookupAnswered();
    return true;
  }

  /** Keys that would be accepted right now without the database, and for how long each at most. */
  get memory(): { remembered: number; ttlMs: number; unreachable: boolean } {
    return { remembered: this.#memory.size, ttlMs: this.#memory.settings.ttlMs, unreachable: this.#unreachable };
  }

  /** Keeps memory in step with what a lookup found: the principal, or undefined (unknown or revoked). */
  #found(hash: string, row: ApiKeyRow | undefined): Principal | undefined {
    if (!row) {
      this.#memory.forgetKey(hash);
      return undefined;
    }
    const principal: Principal = { id: principalIdOf(row), name: row.name, role: row.role, via: 'apikey' };
    this.#memory.remember(hash, principal);
    return principal;
  }

  /** One lookup in the background while the database is failing, unless one runs or ran less than {@link TRIAL_EVERY_MS} ago. */
  #trial(hash: string): void {
    if (this.#trialRunning || Date.now() < this.#nextTrialAt) return;
    this.#trialRunning = true;
    withTimeout(this.repository.findActiveByHash(hash), LOOKUP_TIMEOUT_MS)
      .then(
        (row) => {
          this.#lookupAnswered();
          this.#found(hash, row);
        },
        (error: unknown) => this.#lookupFailed(error),
      )
      .finally(() => (this.#trialRunning = false));
  }

  #lookupFailed(error: unknown): void {
    if (!this.#unreachable) this.options.onLookupFailed?.(error);
    this.#unreachable = true;
    this.#nextTrialAt = Date.now() + TRIAL_EVERY_MS;
  }

  #lookupAnswered(): void {
    if (!this.#unreachable) return;
    // Back from an outage: whatever was revoked meanwhile without this instance hearing of it must be
    // looked up again, not served from memory at the next outage.
    this.#unreachable = false;
    this.#memory.clear();
    this.options.onLookupRecovered?.();
  }
}

/** A well-formed hash no key has (nobody can produce a key hashing to 64 zeros). */
const NO_KEY_HASH = '0'.repeat(64);

/** The principal id a key authenticates as: stable, safe to log, never the key. */
function principalIdOf(row: Pick<ApiKeyRow, 'id'>): string {
  return `key:${row.id}`;
}

export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(API_KEY_PREFIX);
}

/** A key that could not be checked: 503, so clients and load balancers retry rather than drop the key. */
export function keysUnavailable(message: string) {
  return codedError(ErrorCode.UNAVAILABLE, message, { http: { status: 503 } });
}

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
