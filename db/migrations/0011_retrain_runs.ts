import { type Kysely, sql } from 'kysely';

/**
 * Scheduled retraining runs (src/modules/retraining): one row per (strategy, scheduled tick) that an
 * instance claimed, shared by every instance on the database.
 *
 * The row is also the lease that keeps two instances from training the same strategy at once:
 * - the primary key (strategy, scheduled_for) lets exactly one instance claim a tick, however many
 *   fire it (the others' inserts conflict and do nothing);
 * - the partial unique index lets at most one run per strategy be `running`, so a tick that fires while
 *   an earlier run still trains (on any instance) is skipped;
 * - `expires_at` (the claim time plus the run's timeout and a grace period, by the database clock) is
 *   when a `running` row whose instance died without finishing it stops counting: the next claim marks it
 *   failed and takes over.
 * Why this rather than a Redis lease: docs/decisions/scheduled-retraining.md.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('retrain_runs')
    .addColumn('strategy', 'text', (col) => col.notNull())
    .addColumn('scheduled_for', 'timestamptz', (col) => col.notNull())
    .addColumn('instance', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull().check(sql`status in ('running', 'succeeded', 'failed', 'cancelled')`))
    .addColumn('started_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('version', 'text')
    .addColumn('detail', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addPrimaryKeyConstraint('retrain_runs_pkey', ['strategy', 'scheduled_for'])
    .execute();
  await db.schema
    .createIndex('retrain_runs_one_running_idx')
    .on('retrain_runs')
    .column('strategy')
    .unique()
    .where(sql<boolean>`status = 'running'`)
    .execute();
  // The last run of each (strategy, status), read at every /metrics scrape.
  await db.schema.createIndex('retrain_runs_finished_idx').on('retrain_runs').columns(['strategy', 'status', 'finished_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('retrain_runs').execute();
}
