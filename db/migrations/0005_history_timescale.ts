import { type Kysely, sql } from 'kysely';

/**
 * TimescaleDB extras for prediction history; a no-op without the extension (plain PostgreSQL, PGlite),
 * where the same queries run on the plain table with date_bin (see README, "Confidence history").
 *
 * UNTESTED HERE: the machines this was written on have no TimescaleDB, so every statement below has
 * only been checked against TimescaleDB's documentation (2.11+ is assumed: inserts with ON CONFLICT
 * and UPDATEs on compressed chunks, which the writer and the outcome job need).
 *
 * - Continuous aggregates `prediction_history_hourly` and `prediction_history_daily`: per (bucket,
 *   symbol, strategy, model_version) the mean probability and confidence, min/max confidence and the
 *   count, refreshed by policies (the last 3 days every 30 minutes; the last 30 days every hour). For
 *   dashboards and ad-hoc SQL over long ranges; the GraphQL queries read the hypertable itself, whose
 *   chunk exclusion and (symbol, strategy, time desc) index answer them within the benchmark's target.
 * - Compression of chunks older than 90 days, segmented by (symbol, strategy, model_version) and ordered
 *   by time desc: the unique key's columns are all segment-by or order-by columns, as TimescaleDB
 *   requires. 90 days leaves every horizon's outcome to be filled in on uncompressed rows.
 * - Retention is not set here but at start-up from HISTORY_RETENTION_DAYS (off by default), so changing
 *   it needs no migration; the aggregates keep their buckets after raw chunks are dropped.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length === 0) return;

  for (const [view, width] of [
    ['prediction_history_hourly', '1 hour'],
    ['prediction_history_daily', '1 day'],
  ] as const) {
    await sql`
      create materialized view ${sql.id(view)} with (timescaledb.continuous) as
      select time_bucket(${sql.lit(width)}::interval, time) as bucket, symbol, strategy, model_version,
             avg(probability) as probability, avg(confidence) as confidence,
             min(confidence) as min_confidence, max(confidence) as max_confidence, count(*) as count
      from prediction_history
      group by bucket, symbol, strategy, model_version
      with no data
    `.execute(db);
  }
  await sql`
    select add_continuous_aggregate_policy('prediction_history_hourly',
      start_offset => interval '3 days', end_offset => interval '1 hour', schedule_interval => interval '30 minutes')
  `.execute(db);
  await sql`
    select add_continuous_aggregate_policy('prediction_history_daily',
      start_offset => interval '30 days', end_offset => interval '1 day', schedule_interval => interval '1 hour')
  `.execute(db);

  await sql`
    alter table prediction_history set (
      timescaledb.compress,
      timescaledb.compress_segmentby = 'symbol, strategy, model_version',
      timescaledb.compress_orderby = 'time desc'
    )
  `.execute(db);
  await sql`select add_compression_policy('prediction_history', compress_after => interval '90 days', if_not_exists => true)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length === 0) return;
  await sql`select remove_compression_policy('prediction_history', if_exists => true)`.execute(db);
  await sql`drop materialized view if exists prediction_history_daily`.execute(db);
  await sql`drop materialized view if exists prediction_history_hourly`.execute(db);
}
