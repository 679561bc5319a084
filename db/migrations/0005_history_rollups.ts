import { type Kysely, sql } from 'kysely';

/**
 * Pre-aggregated confidence for long-range queries, so a bucketed year of minute-level predictions does
 * not mean aggregating ~100k rows per query.
 *
 * Plain PostgreSQL and PGlite: an hourly rollup table, `prediction_confidence_hourly`, one row per
 * (symbol, strategy, model_version, hour) with the count, sums of probability and confidence, min/max
 * confidence and the signal of the hour's latest prediction. Statement-level triggers keep it exact
 * whoever writes: AFTER INSERT adds the inserted rows (a transition table holds only rows actually
 * inserted, so ON CONFLICT DO NOTHING repeats add nothing), AFTER DELETE recomputes the hours touched,
 * AFTER TRUNCATE empties it. Rows are never updated except their outcome columns, which the rollup does
 * not hold. confidenceHistory reads it for buckets that are whole hours (history-read.repository.ts).
 *
 * TimescaleDB (tested on 2.28.3 by the suite's TimescaleDB leg, SIBYL_TEST_TIMESCALE=1; 2.11+ is assumed,
 * for inserts with ON CONFLICT and UPDATEs on compressed chunks). Hypertables do not support transition
 * tables, so instead:
 * - continuous aggregates `prediction_history_hourly` and `prediction_history_daily` (mean probability
 *   and confidence, min/max confidence, count per bucket, symbol, strategy, model_version), refreshed by
 *   policies (the last 3 days every 30 minutes; the last 30 days every hour), for dashboards and SQL;
 *   the GraphQL query reads the hypertable itself there;
 * - compression of chunks older than 90 days, segmented by (symbol, strategy, model_version) and ordered
 *   by time desc (the unique key's columns are all segment-by or order-by columns, as required);
 * - retention is set at start-up from HISTORY_RETENTION_DAYS (off by default), not here.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length === 0) {
    await hourlyRollup(db);
    return;
  }

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
  if (rows.length === 0) {
    await sql`drop trigger if exists prediction_history_rollup_insert on prediction_history`.execute(db);
    await sql`drop trigger if exists prediction_history_rollup_delete on prediction_history`.execute(db);
    await sql`drop trigger if exists prediction_history_rollup_truncate on prediction_history`.execute(db);
    await sql`drop function if exists prediction_history_rollup_insert()`.execute(db);
    await sql`drop function if exists prediction_history_rollup_delete()`.execute(db);
    await sql`drop function if exists prediction_history_rollup_truncate()`.execute(db);
    await sql`drop table if exists prediction_confidence_hourly`.execute(db);
    return;
  }
  await sql`select remove_compression_policy('prediction_history', if_exists => true)`.execute(db);
  await sql`drop materialized view if exists prediction_history_daily`.execute(db);
  await sql`drop materialized view if exists prediction_history_hourly`.execute(db);
}

/** The rollup table and its triggers (plain PostgreSQL and PGlite). */
async function hourlyRollup(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table prediction_confidence_hourly (
      symbol text not null,
      strategy text not null,
      model_version text not null,
      bucket timestamptz not null,
      count integer not null,
      sum_probability double precision not null,
      sum_confidence double precision not null,
      min_confidence double precision not null,
      max_confidence double precision not null,
      last_time timestamptz not null,
      last_signal text not null,
      primary key (symbol, strategy, model_version, bucket)
    )
  `.execute(db);
  // The hour's aggregate of a set of history rows; `src` is a relation name.
  const aggregate = (src: string) => sql`
    select symbol, strategy, model_version, date_bin(interval '1 hour', time, timestamptz '2000-01-01 00:00:00+00') as bucket,
           count(*)::int, sum(probability), sum(confidence), min(confidence), max(confidence), max(time),
           (array_agg(signal order by time desc))[1]
    from ${sql.raw(src)}
    group by 1, 2, 3, 4
  `;
  const columns = sql`(symbol, strategy, model_version, bucket, count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal)`;
  await sql`
    create function prediction_history_rollup_insert() returns trigger language plpgsql as $$
    begin
      insert into prediction_confidence_hourly ${columns}
      ${aggregate('inserted')}
      on conflict (symbol, strategy, model_version, bucket) do update set
        count = prediction_confidence_hourly.count + excluded.count,
        sum_probability = prediction_confidence_hourly.sum_probability + excluded.sum_probability,
        sum_confidence = prediction_confidence_hourly.sum_confidence + excluded.sum_confidence,
        min_confidence = least(prediction_confidence_hourly.min_confidence, excluded.min_confidence),
        max_confidence = greatest(prediction_confidence_hourly.max_confidence, excluded.max_confidence),
        last_signal = case when excluded.last_time >= prediction_confidence_hourly.last_time
                           then excluded.last_signal else prediction_confidence_hourly.last_signal end,
        last_time = greatest(prediction_confidence_hourly.last_time, excluded.last_time);
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create function prediction_history_rollup_delete() returns trigger language plpgsql as $$
    begin
      create temporary table if not exists pg_temp.rollup_touched (symbol text, strategy text, model_version text, bucket timestamptz) on commit drop;
      insert into pg_temp.rollup_touched
        select distinct symbol, strategy, model_version, date_bin(interval '1 hour', time, timestamptz '2000-01-01 00:00:00+00') from deleted;
      delete from prediction_confidence_hourly r using pg_temp.rollup_touched t
        where r.symbol = t.symbol and r.strategy = t.strategy and r.model_version = t.model_version and r.bucket = t.bucket;
      insert into prediction_confidence_hourly ${columns}
      ${aggregate(`(select h.* from prediction_history h join pg_temp.rollup_touched t
          on h.symbol = t.symbol and h.strategy = t.strategy and h.model_version = t.model_version
         and h.time >= t.bucket and h.time < t.bucket + interval '1 hour') as remaining`)};
      delete from pg_temp.rollup_touched;
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create function prediction_history_rollup_truncate() returns trigger language plpgsql as $$
    begin
      truncate prediction_confidence_hourly;
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create trigger prediction_history_rollup_insert after insert on prediction_history
    referencing new table as inserted for each statement execute function prediction_history_rollup_insert()
  `.execute(db);
  await sql`
    create trigger prediction_history_rollup_delete after delete on prediction_history
    referencing old table as deleted for each statement execute function prediction_history_rollup_delete()
  `.execute(db);
  await sql`
    create trigger prediction_history_rollup_truncate after truncate on prediction_history
    for each statement execute function prediction_history_rollup_truncate()
  `.execute(db);
}
