import { type Kysely, sql } from 'kysely';

/**
 * The append-only record of every prediction served: one row per (symbol, strategy, model version,
 * asOf bar). The key is unique because a prediction is a pure function of those four things, so a
 * second row with the same key would say nothing new; writers insert with `on conflict do nothing`,
 * which makes every retry and every duplicate a harmless no-op.
 *
 * `realized_return`, `correct` and `covered` stay null until the horizon has passed and the outcome
 * job fills them in; nothing else is ever updated.
 *
 * The CHECKs are the last line of defence behind the writer's own validation (history.writer.ts
 * mirrors them so the database never sees a row it would refuse). `x < 'Infinity'` also refuses NaN,
 * which PostgreSQL orders above every number.
 *
 * Reads are "one symbol and strategy over a time range", newest first: the (symbol, strategy, time
 * desc) index serves them. On TimescaleDB the table becomes a hypertable on `time`; the unique key
 * includes `time`, as TimescaleDB requires of unique indexes on hypertables.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const unit = (column: string) => sql`${sql.ref(column)} >= 0 and ${sql.ref(column)} <= 1`;
  const finite = (column: string) => sql`${sql.ref(column)} > '-Infinity' and ${sql.ref(column)} < 'Infinity'`;
  await db.schema
    .createTable('prediction_history')
    .addColumn('time', 'timestamptz', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('symbol', 'text', (col) => col.notNull())
    .addColumn('strategy', 'text', (col) => col.notNull())
    .addColumn('model_version', 'text', (col) => col.notNull())
    .addColumn('horizon', 'text', (col) => col.notNull())
    .addColumn('probability', 'double precision', (col) => col.notNull())
    .addColumn('confidence', 'double precision', (col) => col.notNull())
    .addColumn('signal', 'text', (col) => col.notNull())
    .addColumn('expected_return', 'double precision')
    .addColumn('interval_level', 'double precision', (col) => col.notNull())
    .addColumn('interval_low', 'double precision', (col) => col.notNull())
    .addColumn('interval_high', 'double precision', (col) => col.notNull())
    .addColumn('features_hash', 'text', (col) => col.notNull())
    .addColumn('realized_return', 'double precision')
    .addColumn('correct', 'boolean')
    .addColumn('covered', 'boolean')
    .addUniqueConstraint('prediction_history_key', ['symbol', 'strategy', 'model_version', 'time'])
    .addCheckConstraint('prediction_history_probability_unit', unit('probability'))
    .addCheckConstraint('prediction_history_confidence_unit', unit('confidence'))
    .addCheckConstraint('prediction_history_signal_known', sql`signal in ('BUY', 'SELL', 'HOLD')`)
    .addCheckConstraint('prediction_history_expected_return_finite', sql`expected_return is null or (${finite('expected_return')})`)
    .addCheckConstraint(
      'prediction_history_interval_valid',
      sql`interval_level > 0 and interval_level < 1 and ${finite('interval_low')} and ${finite('interval_high')} and interval_low <= interval_high`,
    )
    .addCheckConstraint('prediction_history_realized_return_finite', sql`realized_return is null or (${finite('realized_return')})`)
    .execute();
  await db.schema
    .createIndex('prediction_history_symbol_strategy_time_idx')
    .on('prediction_history')
    .columns(['symbol', 'strategy', 'time desc'])
    .execute();

  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length > 0) {
    await sql`select create_hypertable('prediction_history', 'time', if_not_exists => true, migrate_data => true)`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('prediction_history').execute();
}
