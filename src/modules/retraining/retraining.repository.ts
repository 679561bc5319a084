import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { AuditLog } from '../audit/index.js';

/** Audit actions of scheduled retraining (`audit_log.action`, actor `scheduler`); `subject` is the strategy. */
export const RetrainAuditAction = {
  /** A version was trained, verified and registered as the strategy's shadow; the detail holds its held-out figures. */
  RETRAINED: 'model.retrained',
  /** A run failed (training, verification, registration, a timeout, or its instance vanished); nothing was registered. */
  FAILED: 'model.retrain_failed',
  /** A run was stopped by its gateway shutting down; nothing was registered. */
  CANCELLED: 'model.retrain_cancelled',
} as const;

export const SCHEDULER_ACTOR = 'scheduler';

export type FinishedStatus = 'succeeded' | 'failed' | 'cancelled';

/** Who holds what a claim wanted: the same tick (another instance got it first) or a run still going. */
export interface RunHolder {
  readonly instance: string;
  readonly scheduledFor: Date;
  readonly startedAt: Date;
  readonly status: string;
}

export type Claim =
  | { readonly claimed: true; readonly expired: readonly RunHolder[] }
  | { readonly claimed: false; readonly why: 'tick-claimed' | 'running'; readonly holder: RunHolder | undefined };

/** One recorded run, newest first from {@link RetrainRunsRepository.recent}. */
export interface RetrainRun extends RunHolder {
  readonly strategy: string;
  readonly finishedAt: Date | null;
  readonly version: string | null;
  readonly detail: Record<string, unknown>;
}

/**
 * All SQL over `retrain_runs` (db/migrations/0011_retrain_runs.ts): the claim that lets one instance
 * run a strategy's scheduled tick, and each run's end, written with its audit row in one transaction.
 *
 * ```ts
 * const runs = new RetrainRunsRepository(database.db);
 * await runs.claim({ strategy: 'direction-1d', scheduledFor: tick, instance, ttlMs: 3_660_000, version: 'r20261204T233000Z' });
 * // → { claimed: true, expired: [] }, or { claimed: false, why: 'tick-claimed', holder: { instance: 'b7…', … } }
 * ```
 */
export class RetrainRunsRepository {
  constructor(private readonly db: Db) {}

  /**
   * Claims `(strategy, scheduledFor)` for `instance`, as one transaction: first every `running` row of
   * the strategy past its `expires_at` (its instance died mid-run) is marked failed and audited, then the
   * insert, which does nothing when the tick is already claimed or another run of the strategy is still
   * `running` (the table's two unique indexes; concurrent claimants wait for each other there, so
   * exactly one wins). `ttlMs` is how long the claim holds without being finished, by the database clock.
   */
  async claim(request: { strategy: string; scheduledFor: Date; instance: string; ttlMs: number; version: string }): Promise<Claim> {
    const { strategy, scheduledFor, instance, ttlMs, version } = request;
    return this.db.transaction().execute(async (trx) => {
      const expired = await trx
        .updateTable('retrain_runs')
        .set({
          status: 'failed',
          finished_at: sql<Date>`now()`,
          detail: sql<string>`detail || jsonb_build_object('reason', 'abandoned: its instance stopped before finishing it (claim expired)')`,
        })
        .where('strategy', '=', strategy)
        .where('status', '=', 'running')
        .where('expires_at', '<', sql<Date>`now()`)
        .returning(['instance', 'scheduled_for', 'started_at', 'status', 'version'])
        .execute();
      const audit = new AuditLog(trx);
      for (const row of expired) {
        await audit.record({
          actor: SCHEDULER_ACTOR,
          action: RetrainAuditAction.FAILED,
          subject: strategy,
          detail: {
            version: row.version,
            scheduledFor: row.scheduled_for.toISOString(),
            instance: row.instance,
            stage: 'abandoned',
            reason: `instance ${row.instance} claimed this run at ${row.started_at.toISOString()} and never finished it; taken over by ${instance}`,
          },
        });
      }
      const inserted = await trx
        .insertInto('retrain_runs')
        .values({
          strategy,
          scheduled_for: scheduledFor,
          instance,
          status: 'running',
          expires_at: sql<Date>`now() + ${Math.round(ttlMs)}::int * interval '1 millisecond'`,
          version,
        })
        .onConflict((oc) => oc.doNothing())
        .returning('strategy')
        .executeTakeFirst();
      const holders = (rows: Array<{ instance: string; scheduled_for: Date; started_at: Date; status: string }>) =>
        rows.map((r) => ({ instance: r.instance, scheduledFor: r.scheduled_for, startedAt: r.started_at, status: r.status }));
      if (inserted) return { claimed: true, expired: holders(expired) };
      const sameTick = await trx
        .selectFrom('retrain_runs')
        .select(['instance', 'scheduled_for', 'started_at', 'status'])
        .where('strategy', '=', strategy)
        .where('scheduled_for', '=', scheduledFor)
        .executeTakeFirst();
      if (sameTick) return { claimed: false, why: 'tick-claimed', holder: holders([sameTick])[0] };
      const running = await trx
        .selectFrom('retrain_runs')
        .select(['instance', 'scheduled_for', 'started_at', 'status'])
        .where('strategy', '=', strategy)
        .where('status', '=', 'running')
        .executeTakeFirst();
      return { claimed: false, why: 'running', holder: running && holders([running])[0] };
    });
  }

  /**
   * Ends a run this instance claimed, with its audit row, in one transaction. Resolves false (and writes
   * nothing) when the run is no longer this instance's `running` one: its claim expired and another
   * instance took over, which then audited it as abandoned.
   */
  async finish(run: {
    strategy: string;
    scheduledFor: Date;
    instance: string;
    status: FinishedStatus;
    version: string;
    detail: Record<string, unknown>;
  }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('retrain_runs')
        .set({ status: run.status, finished_at: sql<Date>`now()`, version: run.version, detail: JSON.stringify(run.detail) })
        .where('strategy', '=', run.strategy)
        .where('scheduled_for', '=', run.scheduledFor)
        .where('instance', '=', run.instance)
        .where('status', '=', 'running')
        .returning('strategy')
        .executeTakeFirst();
      if (!updated) return false;
      const action = {
        succeeded: RetrainAuditAction.RETRAINED,
        failed: RetrainAuditAction.FAILED,
        cancelled: RetrainAuditAction.CANCELLED,
      }[run.status];
      await new AuditLog(trx).record({
        actor: SCHEDULER_ACTOR,
        action,
        subject: run.strategy,
        detail: { version: run.version, scheduledFor: run.scheduledFor.toISOString(), instance: run.instance, ...run.detail },
      });
      return true;
    });
  }

  /** When each strategy's last run of each outcome finished (for `sibyl_retrain_last_run_timestamp_seconds`). */
  async lastFinished(): Promise<Array<{ strategy: string; status: FinishedStatus; finishedAt: Date }>> {
    const rows = await this.db
      .selectFrom('retrain_runs')
      .select(['strategy', 'status', (eb) => eb.fn.max('finished_at').as('finished_at')])
      .where('status', '<>', 'running')
      .groupBy(['strategy', 'status'])
      .execute();
    return rows.flatMap((r) =>
      r.finished_at ? [{ strategy: r.strategy, status: r.status as FinishedStatus, finishedAt: r.finished_at }] : [],
    );
  }

  /** A strategy's latest runs, newest tick first. */
  async recent(strategy: string, limit = 20): Promise<RetrainRun[]> {
    const rows = await this.db
      .selectFrom('retrain_runs')
      .selectAll()
      .where('strategy', '=', strategy)
      .orderBy('scheduled_for', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      strategy: r.strategy,
      instance: r.instance,
      scheduledFor: r.scheduled_for,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      status: r.status,
      version: r.version,
      detail: r.detail,
    }));
  }
}
