import type { Db } from '../../infra/db/index.js';
import type { Role } from './roles.js';

export interface ApiKeyRow {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
}

/** All SQL over `api_keys`. */
export class ApiKeysRepository {
  constructor(private readonly db: Db) {}

  /**
   * Runs `work` in one transaction: what it writes through the repository and the executor it is
   * handed (e.g. an audit row) commits together, or not at all.
   */
  transaction<T>(work: (keys: ApiKeysRepository, trx: Db) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => work(new ApiKeysRepository(trx), trx));
  }

  async insert(row: { id: string; name: string; role: Role; keyHash: string; prefix: string; createdBy: string }): Promise<ApiKeyRow> {
    const inserted = await this.db
      .insertInto('api_keys')
      .values({ id: row.id, name: row.name, role: row.role, key_hash: row.keyHash, prefix: row.prefix, created_by: row.createdBy })
      .returning(['id', 'name', 'role', 'prefix', 'created_at', 'created_by', 'revoked_at'])
      .executeTakeFirstOrThrow();
    return toRow(inserted);
  }

  /** The live (not revoked) key with this hash. One indexed lookup (the unique index on key_hash). */
  async findActiveByHash(keyHash: string): Promise<ApiKeyRow | undefined> {
    const row = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'role', 'prefix', 'created_at', 'created_by', 'revoked_at'])
      .where('key_hash', '=', keyHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && toRow(row);
  }

  async list(): Promise<ApiKeyRow[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'role', 'prefix', 'created_at', 'created_by', 'revoked_at'])
      .orderBy('created_at', 'asc')
      .execute();
    return rows.map(toRow);
  }

  /** Marks the key revoked; resolves with the row, or undefined when no such key exists. Idempotent. */
  async revoke(id: string): Promise<ApiKeyRow | undefined> {
    await this.db.updateTable('api_keys').set({ revoked_at: new Date() }).where('id', '=', id).where('revoked_at', 'is', null).execute();
    const row = await this.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'role', 'prefix', 'created_at', 'created_by', 'revoked_at'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toRow(row);
  }
}

function toRow(row: {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  created_at: Date;
  created_by: string;
  revoked_at: Date | null;
}): ApiKeyRow {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.prefix,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
  };
}
