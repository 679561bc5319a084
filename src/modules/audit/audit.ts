import type { Db } from '../../infra/db/index.js';

/** One admin action: who (a principal id such as `key:…`, `jwt:…` or `cli:<os user>`), did what, to what. */
export interface AuditEntry {
  actor: string;
  /** Dotted verb, e.g. `api_key.created`, `api_key.revoked`, `model.activated`. */
  action: string;
  /** What was acted on, e.g. an API key id or `direction-1d@v2`. */
  subject: string;
  /** Anything else worth keeping (never a secret). */
  detail?: Record<string, unknown>;
}

/**
 * The append-only record of admin actions (`audit_log`, migration 0001). A change and its audit row
 * commit in one transaction, so neither exists without the other: services record through
 * `within(trx)`, the transaction that makes the change:
 *
 * ```ts
 * await repository.transaction(async (keys, trx) => {
 *   const row = await keys.revoke(id);
 *   await this.audit.within(trx).record({ actor: principal.id, action: 'api_key.revoked', subject: id });
 * });
 * ```
 */
export class AuditLog {
  constructor(private readonly db: Db) {}

  /** The same log, writing through `trx` (a Kysely transaction). */
  within(trx: Db): AuditLog {
    return new AuditLog(trx);
  }

  async record(entry: AuditEntry): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({ actor: entry.actor, action: entry.action, subject: entry.subject, detail: JSON.stringify(entry.detail ?? {}) })
      .execute();
  }

  /** Newest first. */
  async recent(limit = 100): Promise<Array<AuditEntry & { time: Date }>> {
    const rows = await this.db
      .selectFrom('audit_log')
      .select(['time', 'actor', 'action', 'subject', 'detail'])
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ time: row.time, actor: row.actor, action: row.action, subject: row.subject, detail: row.detail }));
  }
}
