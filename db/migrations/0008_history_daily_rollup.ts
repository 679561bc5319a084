import { type Kysely, sql } from 'kysely';

/**
 * A daily rollup beside 0005's hourly one (plain PostgreSQL and PGlite; nothing on TimescaleDB, whose
 * continuous aggregates 0005 creates instead): `prediction_confidence_daily`, one row per (symbol,
 * strategy, model_version, UTC day), with the same columns as `prediction_confidence_hourly`.
 *
 * Why: confidenceHistory over a year in 1-day buckets read ~8,760 hourly rows per symbol and spent most
 * of its time sorting them for the bucket's latest signal; whole days now come from ~365 daily rows
 * (measured on the bench's data: ~1 ms instead of ~6–9 ms in PostgreSQL).
 *
 * Kept exact by the same statement-level triggers, whose functions this replaces:
 * - AFTER INSERT aggregates the inserted rows by hour once, upserts those hours, then aggregates the
 *   hours (tens of rows per statement, not thousands) by day and upserts those days, in one statement,
 *   so the daily table costs the ingest path almost nothing beyond the hourly one;
 * - AFTER DELETE recomputes the touched hours from the remaining rows (as before), then the touched
 *   days from those hours;
 * - AFTER TRUNCATE empties both.
 * Existing hours are rolled up into days when this migration runs.
 */
const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;
const COLUMNS = sql`(symbol, strategy, model_version, bucket, count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal)`;

/** The ON CONFLICT clause that merges an aggregate row into a rollup row. */
function merge(table: 'prediction_confidence_hourly' | 'prediction_confidence_daily') {
  const t = sql.id(table);
  return sql`on conflict (symbol, strategy, model_version, bucket) do update set
        count = ${t}.count + excluded.count,
        sum_probability = ${t}.sum_probability + excluded.sum_probability,
        sum_confidence = ${t}.sum_confidence + excluded.sum_confidence,
        min_confidence = least(${t}.min_confidence, excluded.min_confidence),
        max_confidence = greatest(${t}.max_confidence, excluded.max_confidence),
        last_signal = case when excluded.last_time >= ${t}.last_time then excluded.last_signal else ${t}.last_signal end,
        last_time = greatest(${t}.last_time, excluded.last_time)`;
}

/** Rollup rows of `src` (a relation with the rollup's columns) merged into days. */
function days(src: string) {
  return sql`
    select symbol, strategy, model_version, date_bin(interval '1 day', bucket, ${ORIGIN}), sum(count)::int, sum(sum_probability),
           sum(sum_confidence), min(min_confidence), max(max_confidence), max(last_time), (array_agg(last_signal order by last_time desc))[1]
    from ${sql.raw(src)}
    group by 1, 2, 3, 4`;
}

/**
 * The delete trigger's first half, as 0005 wrote it and both functions here keep it: the hours the
 * deleted rows fell in (left in pg_temp.rollup_touched), recomputed from the rows that remain.
 */
const REBUILD_TOUCHED_HOURS = sql`create temporary table if not exists pg_temp.rollup_touched (symbol text, strategy text, model_version text, bucket timestamptz) on commit drop;
      insert into pg_temp.rollup_touched
        select distinct symbol, strategy, model_version, date_bin(interval '1 hour', time, ${ORIGIN}) from deleted;
      delete from prediction_confidence_hourly r using pg_temp.rollup_touched t
        where r.symbol = t.symbol and r.strategy = t.strategy and r.model_version = t.model_version and r.bucket = t.bucket;
      insert into prediction_confidence_hourly ${COLUMNS}
        select symbol, strategy, model_version, date_bin(interval '1 hour', time, ${ORIGIN}),
               count(*)::int, sum(probability), sum(confidence), min(confidence), max(confidence), max(time),
               (array_agg(signal order by time desc))[1]
        from (select h.* from prediction_history h join pg_temp.rollup_touched t
                on h.symbol = t.symbol and h.strategy = t.strategy and h.model_version = t.model_version
               and h.time >= t.bucket and h.time < t.bucket + interval '1 hour') as remaining
        group by 1, 2, 3, 4;`;

async function hasHourlyRollup(db: Kysely<unknown>): Promise<boolean> {
  const { rows } = await sql<{ present: boolean }>`select to_regclass('prediction_confidence_hourly') is not null as present`.execute(db);
  return rows[0]?.present === true;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(await hasHourlyRollup(db))) return; // TimescaleDB: continuous aggregates instead (0005)

  await sql`create table prediction_confidence_daily (like prediction_confidence_hourly including all)`.execute(db);
  await sql`insert into prediction_confidence_daily ${COLUMNS} ${days('prediction_confidence_hourly')}`.execute(db);

  await sql`
    create or replace function prediction_history_rollup_insert() returns trigger language plpgsql as $$
    begin
      with hours as (
        select symbol, strategy, model_version, date_bin(interval '1 hour', time, ${ORIGIN}) as bucket,
               count(*)::int as count, sum(probability) as sum_probability, sum(confidence) as sum_confidence,
               min(confidence) as min_confidence, max(confidence) as max_confidence, max(time) as last_time,
               (array_agg(signal order by time desc))[1] as last_signal
        from inserted
        group by 1, 2, 3, 4
      ), upserted as (
        insert into prediction_confidence_hourly ${COLUMNS}
        select * from hours
        ${merge('prediction_confidence_hourly')}
      )
      insert into prediction_confidence_daily ${COLUMNS}
      ${days('hours')}
      ${merge('prediction_confidence_daily')};
      return null;
    end
    $$
  `.execute(db);

  await sql`
    create or replace function prediction_history_rollup_delete() returns trigger language plpgsql as $$
    begin
      ${REBUILD_TOUCHED_HOURS}

      create temporary table if not exists pg_temp.rollup_touched_days (symbol text, strategy text, model_version text, bucket timestamptz) on commit drop;
      insert into pg_temp.rollup_touched_days
        select distinct symbol, strategy, model_version, date_bin(interval '1 day', bucket, ${ORIGIN}) from pg_temp.rollup_touched;
      delete from prediction_confidence_daily r using pg_temp.rollup_touched_days t
        where r.symbol = t.symbol and r.strategy = t.strategy and r.model_version = t.model_version and r.bucket = t.bucket;
      insert into prediction_confidence_daily ${COLUMNS}
      ${days(`(select h.* from prediction_confidence_hourly h join pg_temp.rollup_touched_days t
          on h.symbol = t.symbol and h.strategy = t.strategy and h.model_version = t.model_version
         and h.bucket >= t.bucket and h.bucket < t.bucket + interval '1 day') as remaining`)};

      delete from pg_temp.rollup_touched;
      delete from pg_temp.rollup_touched_days;
      return null;
    end
    $$
  `.execute(db);

  await sql`
    create or replace function prediction_history_rollup_truncate() returns trigger language plpgsql as $$
    begin
      truncate prediction_confidence_hourly, prediction_confidence_daily;
      return null;
    end
    $$
  `.execute(db);
}

/** Back to 0005's hourly-only functions (their bodies as 0005 created them), then without the table. */
export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(await hasHourlyRollup(db))) return;
  await sql`
    create or replace function prediction_history_rollup_insert() returns trigger language plpgsql as $$
    begin
      insert into prediction_confidence_hourly ${COLUMNS}
      select symbol, strategy, model_version, date_bin(interval '1 hour', time, ${ORIGIN}) as bucket,
             count(*)::int, sum(probability), sum(confidence), min(confidence), max(confidence), max(time),
             (array_agg(signal order by time desc))[1]
      from inserted
      group by 1, 2, 3, 4
      ${merge('prediction_confidence_hourly')};
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create or replace function prediction_history_rollup_delete() returns trigger language plpgsql as $$
    begin
      ${REBUILD_TOUCHED_HOURS}
      delete from pg_temp.rollup_touched;
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create or replace function prediction_history_rollup_truncate() returns trigger language plpgsql as $$
    begin
      truncate prediction_confidence_hourly;
      return null;
    end
    $$
  `.execute(db);
  await sql`drop table prediction_confidence_daily`.execute(db);
}
