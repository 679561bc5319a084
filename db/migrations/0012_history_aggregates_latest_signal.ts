import { type Kysely, sql } from 'kysely';

/**
 * TimescaleDB only (plain PostgreSQL and PGlite: nothing; their trigger-kept rollup tables of 0005/0008/0009
 * already carry all of this): the continuous aggregates `prediction_history_hourly` and
 * `prediction_history_daily` are rebuilt so that confidenceHistory can read them instead of the raw
 * hypertable, with the same answers as the rollup tables give. docs/decisions/timescale-history-reads.md
 * says why this design.
 *
 * - Columns: those of the rollup tables (count, sum_probability, sum_confidence, min_confidence,
 *   max_confidence, last_time, and last_signal = `last(signal, time)`, the signal of the bucket's
 *   latest prediction), plus 0005's `probability` and `confidence` means for dashboards and SQL.
 * - `materialized_only = true`: the view returns materialized buckets only. The read path adds the
 *   rest itself from the raw rows (below), which covers more than real-time aggregation does.
 * - Refresh policies over ALL of time (start_offset NULL): predictions are recorded at the asOf of the
 *   bar they were made from, which can be years back (replays, the shipped CSVs), so a window of the
 *   last days would leave such rows unmaterialized for ever. A refresh recomputes only the buckets
 *   invalidated since the last one, so this costs what the new rows cost. The first run is scheduled
 *   at once (initial_start), so an existing history is materialized in the background after migrating.
 * - `prediction_history_unmaterialized(view, width)`: the part of the time line where `view` may not
 *   hold what prediction_history holds, as a multirange of whole buckets of `width`: from the view's
 *   watermark (the end of its last materialized bucket) on, plus every range modified since the last
 *   refresh that covered it (TimescaleDB's invalidation logs: the hypertable's, not yet moved to the
 *   aggregates, and the aggregate's own). A bucket outside it is exact in the view; one inside is read
 *   from the raw rows. It reads TimescaleDB's catalog (tested on 2.28); this function is the one place
 *   that does, so a future TimescaleDB that changes the catalog needs one new migration here.
 * - An index per view on (symbol, strategy, market_source, bucket), the read's key.
 */
const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;
const KEY = sql`symbol, strategy, model_version, market_source`;
const VIEWS = [
  { view: 'prediction_history_hourly', width: '1 hour', endOffset: '1 hour', schedule: '30 minutes' },
  { view: 'prediction_history_daily', width: '1 day', endOffset: '1 day', schedule: '1 hour' },
] as const;

async function timescale(db: Kysely<unknown>): Promise<boolean> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  return rows.length > 0;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(await timescale(db))) return;
  for (const { view } of VIEWS) await sql`drop materialized view if exists ${sql.id(view)}`.execute(db);
  for (const { view, width, endOffset, schedule } of VIEWS) {
    await sql`
      create materialized view ${sql.id(view)} with (timescaledb.continuous, timescaledb.materialized_only = true) as
      select time_bucket(${sql.lit(width)}::interval, time) as bucket, ${KEY},
             count(*) as count, sum(probability) as sum_probability, sum(confidence) as sum_confidence,
             avg(probability) as probability, avg(confidence) as confidence,
             min(confidence) as min_confidence, max(confidence) as max_confidence,
             max(time) as last_time, last(signal, time) as last_signal
      from prediction_history
      group by bucket, ${KEY}
      with no data
    `.execute(db);
    await sql`create index ${sql.id(`${view}_read_idx`)} on ${sql.id(view)} (symbol, strategy, market_source, bucket)`.execute(db);
    await sql`
      select add_continuous_aggregate_policy(${view}::regclass,
        start_offset => null, end_offset => ${sql.lit(endOffset)}::interval, schedule_interval => ${sql.lit(schedule)}::interval,
        initial_start => now())
    `.execute(db);
  }

  // TimescaleDB stores times as microseconds since 1970; its range ends (−2^63, 2^63 − 1, and one below
  // the lowest timestamp) stand for "no bound" and do not convert, so they become ±infinity here.
  // PL/pgSQL rather than SQL: a SQL function with a WITH cannot be inlined and was planned again on
  // every call (~7 ms); PL/pgSQL keeps its plan for the session (~0.1 ms a call).
  await sql`
    create function prediction_history_unmaterialized(view regclass, width interval) returns tstzmultirange
    language plpgsql stable as $$
    begin
      return (with aggregate as (
        select c.mat_hypertable_id, c.raw_hypertable_id
        from _timescaledb_catalog.continuous_agg c
        join pg_class r on r.relname = c.user_view_name
        join pg_namespace n on n.oid = r.relnamespace and n.nspname = c.user_view_schema
        where r.oid = view
      ),
      internal(low, high) as (
        select _timescaledb_functions.cagg_watermark(a.mat_hypertable_id), 9223372036854775807 from aggregate a
        union all
        select l.lowest_modified_value, l.greatest_modified_value
        from aggregate a join _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l on l.hypertable_id = a.raw_hypertable_id
        union all
        select l.lowest_modified_value, l.greatest_modified_value
        from aggregate a join _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l on l.materialization_id = a.mat_hypertable_id
      ),
      spans(low, high) as (
        select case when low < -210866803200000000 then '-infinity'::timestamptz
                    when low >= 9223371331200000000 then 'infinity'::timestamptz
                    else _timescaledb_functions.to_timestamp(low) end,
               case when high < -210866803200000000 then '-infinity'::timestamptz
                    when high >= 9223371331200000000 then 'infinity'::timestamptz
                    else _timescaledb_functions.to_timestamp(high) end
        from internal
      )
      select coalesce(range_agg(tstzrange(
               case when isfinite(low) then date_bin(width, low, ${ORIGIN}) else low end,
               case when isfinite(high) then date_bin(width, high, ${ORIGIN}) + width else high end)), '{}')
      from spans
      where low <= high);
    end
    $$
  `.execute(db);
  await sql`
    comment on function prediction_history_unmaterialized(regclass, interval) is
      'where the continuous aggregate may differ from prediction_history: past its watermark and every range modified since its last refresh, in whole buckets of width'
  `.execute(db);
}

/** Back to the aggregates as 0009 creates them (means, no latest signal; refreshed over the last days). */
export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(await timescale(db))) return;
  await sql`drop function if exists prediction_history_unmaterialized(regclass, interval)`.execute(db);
  for (const { view } of VIEWS) await sql`drop materialized view if exists ${sql.id(view)}`.execute(db);
  for (const { view, width } of VIEWS) {
    await sql`
      create materialized view ${sql.id(view)} with (timescaledb.continuous) as
      select time_bucket(${sql.lit(width)}::interval, time) as bucket, ${KEY},
             avg(probability) as probability, avg(confidence) as confidence,
             min(confidence) as min_confidence, max(confidence) as max_confidence, count(*) as count
      from prediction_history
      group by bucket, ${KEY}
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
}
