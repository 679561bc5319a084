import { type Kysely, sql } from 'kysely';
import * as m0008 from './0008_history_daily_rollup.js';

/**
 * Every recorded prediction says which market it was made from: `market_source` on `prediction_history`
 * ('stored' for the bars store: imported CSVs, vendor feeds, replays of them; 'synthetic' for the seeded
 * market of a machine with no bars), so a synthetic run's rows are never read as the real model's track
 * record. docs/decisions/market-source.md says why these names and why the backfill below is honest.
 *
 * - The column is NOT NULL with no default: every writer names its market, none can forget.
 * - It joins the unique key, (symbol, strategy, model_version, market_source, time): the synthetic
 *   market's history is stamped at UTC midnights like real daily bars, so the two markets can predict
 *   at the same asOf, and those are two different facts, not a repeat.
 * - Existing rows: 'stored' where the bars store holds the bar at (symbol, asOf), which is the only way
 *   a stored-market prediction could have been made (stored bars are upserted, never deleted); every
 *   other row 'unknown' (a synthetic run's, most likely, but nothing recorded that). Readers default to
 *   the serving market, so 'unknown' rows are kept but no longer counted as anyone's track record.
 * - The read index and the rollups (hourly and daily tables of 0005/0008; TimescaleDB's continuous
 *   aggregates) are keyed by market too, so a bucket never mixes markets.
 *
 * TimescaleDB (tested on 2.28.3 by the suite's TimescaleDB leg, SIBYL_TEST_TIMESCALE=1): compressed
 * chunks are decompressed first, because the compression settings name the key's columns.
 */
const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;
const KEY = sql`symbol, strategy, model_version, market_source`;
const COLUMNS = sql`(symbol, strategy, model_version, market_source, bucket,
  count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal)`;

async function timescale(db: Kysely<unknown>): Promise<boolean> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  return rows.length > 0;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const onTimescale = await timescale(db);
  if (onTimescale) await dropTimescaleViews(db);

  await sql`alter table prediction_history add column market_source text`.execute(db);
  await sql`
    update prediction_history h
    set market_source = case when exists (select 1 from market_bars b where b.symbol = h.symbol and b.time = h.time)
                             then 'stored' else 'unknown' end
  `.execute(db);
  await sql`alter table prediction_history alter column market_source set not null`.execute(db);
  await sql`
    alter table prediction_history add constraint prediction_history_market_source_name
    check (length(market_source) between 1 and 64)
  `.execute(db);
  await sql`alter table prediction_history drop constraint prediction_history_key`.execute(db);
  await sql`alter table prediction_history add constraint prediction_history_key unique (${KEY}, time)`.execute(db);
  await sql`drop index prediction_history_symbol_strategy_time_idx`.execute(db);
  await sql`
    create index prediction_history_symbol_strategy_time_idx on prediction_history (symbol, strategy, market_source, time desc)
  `.execute(db);
  await sql`drop index if exists prediction_history_resolved_idx`.execute(db);
  await sql`
    create index prediction_history_resolved_idx on prediction_history (strategy, model_version, market_source, time)
    where realized_return is not null
  `.execute(db);
  await sql`
    comment on column prediction_history.market_source is
      'the market the prediction was made from: stored, synthetic, unknown (recorded before 0009)'
  `.execute(db);

  if (onTimescale) await createTimescaleViews(db);
  else await marketRollups(db);
}

/**
 * Back to one market per key. Refuses (leaving everything as it is) while two markets share a key,
 * since one of the two rows would have to be thrown away.
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select 1 from prediction_history group by symbol, strategy, model_version, time having count(*) > 1
    ) d
  `.execute(db);
  if ((rows[0]?.n ?? 0) > 0) {
    throw new Error(`0009 down: ${rows[0]!.n} key(s) hold predictions of more than one market; delete one market's rows first`);
  }
  const onTimescale = await timescale(db);
  if (onTimescale) await dropTimescaleViews(db);
  else await dropMarketRollups(db);
  await sql`alter table prediction_history drop constraint prediction_history_key`.execute(db);
  await sql`drop index prediction_history_symbol_strategy_time_idx`.execute(db);
  await sql`drop index if exists prediction_history_resolved_idx`.execute(db);
  await sql`alter table prediction_history drop column market_source`.execute(db);
  await sql`alter table prediction_history add constraint prediction_history_key unique (symbol, strategy, model_version, time)`.execute(
    db,
  );
  await sql`create index prediction_history_symbol_strategy_time_idx on prediction_history (symbol, strategy, time desc)`.execute(db);
  await sql`
    create index prediction_history_resolved_idx on prediction_history (strategy, model_version, time)
    where realized_return is not null
  `.execute(db);
  if (onTimescale) await createTimescaleViews(db, false);
  else await hourAndDayRollupsWithoutMarket(db);
}

/** The hour's aggregate of rows of `src` (a relation with prediction_history's columns). */
function hours(src: string) {
  return sql`
    select ${KEY}, date_bin(interval '1 hour', time, ${ORIGIN}) as bucket,
           count(*)::int as count, sum(probability) as sum_probability, sum(confidence) as sum_confidence,
           min(confidence) as min_confidence, max(confidence) as max_confidence, max(time) as last_time,
           (array_agg(signal order by time desc))[1] as last_signal
    from ${sql.raw(src)}
    group by 1, 2, 3, 4, 5`;
}

/** Rollup rows of `src` (a relation with the rollup's columns) merged into days. */
function days(src: string) {
  return sql`
    select ${KEY}, date_bin(interval '1 day', bucket, ${ORIGIN}), sum(count)::int, sum(sum_probability),
           sum(sum_confidence), min(min_confidence), max(max_confidence), max(last_time),
           (array_agg(last_signal order by last_time desc))[1]
    from ${sql.raw(src)}
    group by 1, 2, 3, 4, 5`;
}

/** The ON CONFLICT clause that merges an aggregate row into a rollup row (as 0008's, on the wider key). */
function merge(table: 'prediction_confidence_hourly' | 'prediction_confidence_daily') {
  const t = sql.id(table);
  return sql`on conflict (${KEY}, bucket) do update set
        count = ${t}.count + excluded.count,
        sum_probability = ${t}.sum_probability + excluded.sum_probability,
        sum_confidence = ${t}.sum_confidence + excluded.sum_confidence,
        min_confidence = least(${t}.min_confidence, excluded.min_confidence),
        max_confidence = greatest(${t}.max_confidence, excluded.max_confidence),
        last_signal = case when excluded.last_time >= ${t}.last_time then excluded.last_signal else ${t}.last_signal end,
        last_time = greatest(${t}.last_time, excluded.last_time)`;
}

/** `a` and `b` (relation aliases) have the same rollup key, as SQL text. */
const sameKey = (a: string, b: string) =>
  ['symbol', 'strategy', 'model_version', 'market_source'].map((column) => `${a}.${column} = ${b}.${column}`).join(' and ');

/**
 * Plain PostgreSQL and PGlite: the rollup tables gain `market_source` in their key and are rebuilt from
 * the history (whose rows now carry it); the trigger functions of 0008 are replaced by the same ones on
 * the wider key (the triggers themselves, created by 0005, call them by name and stay).
 */
async function marketRollups(db: Kysely<unknown>): Promise<void> {
  for (const table of ['prediction_confidence_hourly', 'prediction_confidence_daily'] as const) {
    await sql`truncate ${sql.id(table)}`.execute(db);
    await sql`alter table ${sql.id(table)} add column market_source text not null`.execute(db);
    await sql`alter table ${sql.id(table)} drop constraint ${sql.id(`${table}_pkey`)}`.execute(db);
    await sql`alter table ${sql.id(table)} add primary key (${KEY}, bucket)`.execute(db);
  }
  await sql`insert into prediction_confidence_hourly ${COLUMNS} ${hours('prediction_history')}`.execute(db);
  await sql`insert into prediction_confidence_daily ${COLUMNS} ${days('prediction_confidence_hourly')}`.execute(db);

  await sql`
    create or replace function prediction_history_rollup_insert() returns trigger language plpgsql as $$
    begin
      with hours as (${hours('inserted')}), upserted as (
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
      create temporary table if not exists pg_temp.rollup_market_hours
        (symbol text, strategy text, model_version text, market_source text, bucket timestamptz) on commit drop;
      insert into pg_temp.rollup_market_hours
        select distinct ${KEY}, date_bin(interval '1 hour', time, ${ORIGIN}) from deleted;
      delete from prediction_confidence_hourly r using pg_temp.rollup_market_hours t
        where ${sql.raw(sameKey('r', 't'))} and r.bucket = t.bucket;
      insert into prediction_confidence_hourly ${COLUMNS}
      ${hours(`(select h.* from prediction_history h join pg_temp.rollup_market_hours t
          on ${sameKey('h', 't')} and h.time >= t.bucket and h.time < t.bucket + interval '1 hour') as remaining`)};

      create temporary table if not exists pg_temp.rollup_market_days
        (symbol text, strategy text, model_version text, market_source text, bucket timestamptz) on commit drop;
      insert into pg_temp.rollup_market_days
        select distinct ${KEY}, date_bin(interval '1 day', bucket, ${ORIGIN}) from pg_temp.rollup_market_hours;
      delete from prediction_confidence_daily r using pg_temp.rollup_market_days t
        where ${sql.raw(sameKey('r', 't'))} and r.bucket = t.bucket;
      insert into prediction_confidence_daily ${COLUMNS}
      ${days(`(select h.* from prediction_confidence_hourly h join pg_temp.rollup_market_days t
          on ${sameKey('h', 't')} and h.bucket >= t.bucket and h.bucket < t.bucket + interval '1 day') as remaining`)};

      delete from pg_temp.rollup_market_hours;
      delete from pg_temp.rollup_market_days;
      return null;
    end
    $$
  `.execute(db);
}

/** down, plain PostgreSQL and PGlite: the hourly rollup back on 0005's key; the daily one goes (0008 rebuilds it). */
async function dropMarketRollups(db: Kysely<unknown>): Promise<void> {
  await sql`drop table prediction_confidence_daily`.execute(db);
  await sql`truncate prediction_confidence_hourly`.execute(db);
  await sql`alter table prediction_confidence_hourly drop constraint prediction_confidence_hourly_pkey`.execute(db);
  await sql`alter table prediction_confidence_hourly drop column market_source`.execute(db);
  await sql`alter table prediction_confidence_hourly add primary key (symbol, strategy, model_version, bucket)`.execute(db);
}

/** down: the hourly rollup refilled from the history, then 0008's daily table and functions, as 0008 makes them. */
async function hourAndDayRollupsWithoutMarket(db: Kysely<unknown>): Promise<void> {
  await sql`
    insert into prediction_confidence_hourly
      (symbol, strategy, model_version, bucket,
       count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal)
    select symbol, strategy, model_version, date_bin(interval '1 hour', time, ${ORIGIN}), count(*)::int, sum(probability), sum(confidence),
           min(confidence), max(confidence), max(time), (array_agg(signal order by time desc))[1]
    from prediction_history group by 1, 2, 3, 4
  `.execute(db);
  await m0008.up(db);
}

/** TimescaleDB: the continuous aggregates and compression name the key's columns, so they go first. */
async function dropTimescaleViews(db: Kysely<unknown>): Promise<void> {
  await sql`select remove_compression_policy('prediction_history', if_exists => true)`.execute(db);
  await sql`select decompress_chunk(c, if_compressed => true) from show_chunks('prediction_history') c`.execute(db);
  await sql`alter table prediction_history set (timescaledb.compress = false)`.execute(db);
  await sql`drop materialized view if exists prediction_history_daily`.execute(db);
  await sql`drop materialized view if exists prediction_history_hourly`.execute(db);
}

/** TimescaleDB: 0005's continuous aggregates and compression, with (or, for down, without) the market. */
async function createTimescaleViews(db: Kysely<unknown>, withMarket = true): Promise<void> {
  const key = withMarket ? KEY : sql`symbol, strategy, model_version`;
  const segments = withMarket ? 'symbol, strategy, model_version, market_source' : 'symbol, strategy, model_version';
  for (const [view, width] of [
    ['prediction_history_hourly', '1 hour'],
    ['prediction_history_daily', '1 day'],
  ] as const) {
    await sql`
      create materialized view ${sql.id(view)} with (timescaledb.continuous) as
      select time_bucket(${sql.lit(width)}::interval, time) as bucket, ${key},
             avg(probability) as probability, avg(confidence) as confidence,
             min(confidence) as min_confidence, max(confidence) as max_confidence, count(*) as count
      from prediction_history
      group by bucket, ${key}
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
      timescaledb.compress_segmentby = ${sql.lit(segments)},
      timescaledb.compress_orderby = 'time desc'
    )
  `.execute(db);
  await sql`select add_compression_policy('prediction_history', compress_after => interval '90 days', if_not_exists => true)`.execute(db);
}
