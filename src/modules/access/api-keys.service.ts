import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { badUserInput } from '../../shared/errors.js';
import type { AuditLog } from '../audit/index.js';
import type { ApiKeyRow, ApiKeysRepository } from './api-keys.repository.js';
import type { Revocations } from './revocations.js';
import { isRole, type Principal, type Role } from './roles.js';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs) and tells apart from a JWT. */
export const API_KEY_PREFIX = 'sib_';
const KEY_SHAPE = /^sib_[A-Za-z0-9_-]{43}$/;

/**
 * API keys: created (shown once), listed, revoked, and checked on every request.
 *
 * Stored as SHA-256, not bcrypt/argon2: those are slow on purpose to protect low-entropy passwords from
 * guessing. A key here is 256 random bits, which no amount of hashing speed makes guessable, and it is
 * checked on every request, where a deliberately slow hash would be a denial-of-service lever. A fast
 * hash still means a database leak yields no usable key.
 *
 * No cache: every check is one lookup on the unique index of `key_hash`, so a revoked key is refused on
 * the very next request by every instance sharing the database.
 */
export class ApiKeysService {
  constructor(
    private readonly repository: ApiKeysRepository,
    private readonly audit: AuditLog,
    /** Tells running instances, so WebSocket connections using the key are closed at once. */
    private readonly revocations?: Pick<Revocations, 'announce'>,
  ) {}

  /** Creates a key; `key` is in the result only, never stored or logged. */
  async create(input: { name: string; role: Role; actor: string }): Promise<{ key: string; record: ApiKeyRow }> {
    const name = input.name.trim();
    if (name.length < 1 || name.length > 100) throw badUserInput('name: 1-100 characters');
    if (!isRole(input.role)) throw badUserInput(`role: one of viewer, analyst, admin (got ${JSON.stringify(input.role)})`);
    const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const record = await this.repository.insert({
      id: randomUUID(),
      name,
      role: input.role,
      keyHash: hashKey(key),
      prefix: key.slice(0, API_KEY_PREFIX.length + 6),
      createdBy: input.actor,
    });
    await this.audit.record({ actor: input.actor, action: 'api_key.created', subject: record.id, detail: { name, role: input.role, prefix: record.prefix } });
    return { key, record };
  }

  list(): Promise<ApiKeyRow[]> {
    return this.repository.list();
  }

  /** Revokes at once (see the class comment); undefined when no key has this id. */
  async revoke(id: string, actor: string): Promise<ApiKeyRow | undefined> {
    const row = await this.repository.revoke(id);
    if (row) {
      this.revocations?.announce(principalIdOf(row));
      await this.audit.record({ actor, action: 'api_key.revoked', subject: row.id, detail: { name: row.name, role: row.role } });
    }
    return row;
  }

  /** The principal a presented key stands for, or undefined when it is unknown, malformed or revoked. */
  async verify(key: string): Promise<Principal | undefined> {
    if (!KEY_SHAPE.test(key)) return undefined;
    const row = await this.repository.findActiveByHash(hashKey(key));
    return row ? { id: principalIdOf(row), name: row.name, role: row.role, via: 'apikey' } : undefined;
  }
}

/** The principal id a key authenticates as: stable, safe to log, never the key. */
function principalIdOf(row: Pick<ApiKeyRow, 'id'>): string {
  return `key:${row.id}`;
}

export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(API_KEY_PREFIX);
}

function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
