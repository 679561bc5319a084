import type { Db } from '../../infra/db/index.js';

/** Which version serves a strategy and which runs in shadow, as every instance reads it. */
export interface ServingRecord {
  readonly strategy: string;
  readonly activeVersion: string;
  readonly shadowVersion: string | null;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

/** One change of a strategy's serving record, from the audit log. */
export interface ServingChange {
  readonly time: Date;
  readonly actor: string;
  readonly action: string;
  readonly strategy: string;
  readonly detail: Record<string, unknown>;
}

/** Audit actions this module writes (`audit_log.action`); `subject` is the strategy. */
export const AuditAction = {
  /** First start with no record: the default (newest) version was recorded. */
  DEFAULT: 'model.default',
  ACTIVATE: 'model.activate',
  SHADOW: 'model.shadow',
} as const;

/**
 * All SQL over `model_serving` and the model entries of `audit_log`. Every change writes its record
 * and its audit row in one transaction, so there is never a switch without its "who and when".
 *
 * ```ts
 * const repository = new ModelServingRepository(database.db);
 * await repository.activate({ strategy: 'direction-1d', version: 'v2', actor: 'alice' });
 * // → { previous: 'v1', shadow: null }
 * ```
 */
export class ModelServingRepository {
  constructor(private readonly db: Db) {}

  async all(): Promise<Map<string, ServingRecord>> {
    const rows = await this.db.selectFrom('model_serving').selectAll().execute();
    return new Map(rows.map((row) => [row.strategy, toRecord(row)]));
  }

  async find(strategy: string): Promise<ServingRecord | undefined> {
    const row = await this.db.selectFrom('model_serving').selectAll().where('strategy', '=', strategy).executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * The record of `strategy`, creating it with `version` if there is none. Instances starting together
   * race here harmlessly: the first insert wins, and every instance returns the winner's record.
   */
  async ensure(strategy: string, version: string, actor: string): Promise<ServingRecord> {
    return this.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('model_serving')
        .values({ strategy, active_version: version, shadow_version: null, updated_by: actor })
        .onConflict((oc) => oc.column('strategy').doNothing())
        .returning('strategy')
        .executeTakeFirst();
      if (inserted) await audit(trx, actor, AuditAction.DEFAULT, strategy, { version });
      const row = await trx.selectFrom('model_serving').selectAll().where('strategy', '=', strategy).executeTakeFirstOrThrow();
      return toRecord(row);
    });
  }

  /**
   * Makes `version` the active one. A shadow equal to the new active version is cleared (promoting the
   * shadow ends its evaluation). Resolves with the version it replaced (null when there was no record).
   * `why`, when given, is one more audit row written in the same transaction (the promotion policy's
   * decision): the switch and the decision that made it commit together or not at all.
   */
  async activate(change: { strategy: string; version: string; actor: string; why?: AuditRow | undefined }): Promise<{ previous: string | null; record: ServingRecord }> {
    const { strategy, version, actor, why } = change;
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('model_serving').selectAll().where('strategy', '=', strategy).forUpdate().executeTakeFirst();
      const shadow = current?.shadow_version === version ? null : (current?.shadow_version ?? null);
      const row = await trx
        .insertInto('model_serving')
        .values({ strategy, active_version: version, shadow_version: shadow, updated_by: actor, updated_at: new Date() })
        .onConflict((oc) => oc.column('strategy').doUpdateSet({ active_version: version, shadow_version: shadow, updated_by: actor, updated_at: new Date() }))
        .returningAll()
        .executeTakeFirstOrThrow();
      const previous = current?.active_version ?? null;
      await audit(trx, actor, AuditAction.ACTIVATE, strategy, { version, previous, shadow, ...(current?.shadow_version === version && { promotedShadow: true }) });
      // Last, after the switch is written: if it fails, the switch is rolled back with it.
      if (why) await trx.insertInto('audit_log').values(why).execute();
      return { previous, record: toRecord(row) };
    });
  }

  /**
   * Names the shadow version (null: none). The strategy must have a record (`ensure` first); a shadow
   * equal to the active version is refused by the table's CHECK, so callers check it first.
   */
  async setShadow(change: { strategy: string; version: string | null; actor: string }): Promise<{ previous: string | null; record: ServingRecord }> {
    const { strategy, version, actor } = change;
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('model_serving').selectAll().where('strategy', '=', strategy).forUpdate().executeTakeFirstOrThrow();
      const row = await trx
        .updateTable('model_serving')
        .set({ shadow_version: version, updated_by: actor, updated_at: new Date() })
        .where('strategy', '=', strategy)
        .returningAll()
        .executeTakeFirstOrThrow();
      await audit(trx, actor, AuditAction.SHADOW, strategy, { version, previous: current.shadow_version, active: current.active_version });
      return { previous: current.shadow_version, record: toRecord(row) };
    });
  }

  /** A strategy's latest changes, newest first. */
  async history(strategy: string, limit = 20): Promise<ServingChange[]> {
    const rows = await this.db
      .selectFrom('audit_log')
      .select(['time', 'actor', 'action', 'subject', 'detail'])
      .where('subject', '=', strategy)
      .where('action', 'in', Object.values(AuditAction))
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ time: row.time, actor: row.actor, action: row.action, strategy: row.subject, detail: row.detail }));
  }

  /**
   * The version recorded as active for `strategy` at `time`: the one named by the latest activation (or
   * first-start default) logged at or before it. Undefined when nothing was recorded by then, which is
   * the case for any market date before this deployment first ran.
   */
  async activeAt(strategy: string, time: Date): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('audit_log')
      .select('detail')
      .where('subject', '=', strategy)
      .where('action', 'in', [AuditAction.ACTIVATE, AuditAction.DEFAULT])
      .where('time', '<=', time)
      .orderBy('time', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    const version = row?.detail.version;
    return typeof version === 'string' ? version : undefined;
  }

  /**
   * The version to roll back to: the one the latest activation replaced, skipping activations that
   * replaced `current` with itself. Undefined when the log holds none.
   */
  async previousActive(strategy: string, current: string): Promise<string | undefined> {
    const rows = await this.db
      .selectFrom('audit_log')
      .select('detail')
      .where('subject', '=', strategy)
      .where('action', '=', AuditAction.ACTIVATE)
      .orderBy('id', 'desc')
      .limit(50)
      .execute();
    for (const { detail } of rows) {
      const previous = detail.previous;
      if (typeof previous === 'string' && previous !== current) return previous;
    }
    return undefined;
  }
}

type Executor = Pick<Db, 'insertInto'>;

/** An `audit_log` row as inserted (`detail` is JSON text). */
export interface AuditRow {
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly detail: string;
}

async function audit(db: Executor, actor: string, action: string, subject: string, detail: Record<string, unknown>): Promise<void> {
  await db.insertInto('audit_log').values({ actor, action, subject, detail: JSON.stringify(detail) }).execute();
}

function toRecord(row: { strategy: string; active_version: string; shadow_version: string | null; updated_at: Date; updated_by: string }): ServingRecord {
  return {
    strategy: row.strategy,
    activeVersion: row.active_version,
    shadowVersion: row.shadow_version,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}
