import { type Kysely, sql } from 'kysely';

/**
 * Realized outcomes move out of `prediction_history` into a table of their own, so that writing an
 * outcome never updates a history row: on TimescaleDB, history chunks are compressed 90 days after
 * their asOf (0005), and with predictions made from past bars (the shipped CSVs end in 2021) nearly
 * every row is compressed before its horizon has passed; the outcome job's UPDATE then had to
 * decompress whole chunks and failed at TimescaleDB's decompression limit. docs/decisions/outcomes-table.md
 * says why this design rather than holding compression back.
 *
 * - `prediction_outcomes`: one row per resolved prediction, keyed like the history row it belongs to
 *   (symbol, strategy, model_version, market_source, time), append-only: inserted once by the outcome
 *   job (`on conflict do nothing`), never updated. Columns as 0004 defined them on the history row:
 *   realized_return, correct, covered (null only for an outcome migrated from a row that had none),
 *   plus resolved_at, and the three facts of the prediction its readers score (probability,
 *   confidence, interval_level; a history row never changes, so the copies cannot go stale). With
 *   those, modelMetrics, compareModels, interval coverage and explanations read this table alone: joined
 *   to history on the key they took twice as long (a hash join over all of the model's rows). Its
 *   primary key leads with (strategy, market_source, model_version): what they all filter on.
 * - `prediction_outcomes_pending`: the predictions still waiting for an outcome, with what computing
 *   one needs (probability, interval bounds) and what the outcome row copies (confidence, interval
 *   level), keyed by (market_source, time, …) in the job's paging order. HistoryRepository adds each row it inserts in the same statement; the job deletes the row
 *   in the statement that stores its outcome. It replaces 0004's partial index of pending history rows,
 *   and like it stays about one horizon's rows large; the job never reads prediction_history, so
 *   compressed chunks are not even decompressed for reading.
 * - TRUNCATE of prediction_history empties both (a trigger, as the rollups of 0005 are emptied): no
 *   outcome or queued row outlives a history emptied wholesale. Rows deleted one by one, or dropped with
 *   chunks by TimescaleDB's retention, leave their outcome: the track record outlives the raw
 *   predictions, as continuous aggregates outlive dropped chunks.
 * - Existing data: every outcome stored on a history row is copied (a missing `correct` is derived
 *   from its definition, (probability ≥ 0.5) = (realized_return > 0)); every row without one becomes
 *   pending. Then 0004's indexes and the three columns go.
 *
 * Plain PostgreSQL, PGlite and TimescaleDB alike: both tables are ordinary tables (not hypertables:
 * small, and the pending one is deleted from row by row).
 */
const KEY = sql`symbol, strategy, model_version, market_source, time`;
const finite = (column: string) => sql`${sql.ref(column)} > '-Infinity' and ${sql.ref(column)} < 'Infinity'`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table prediction_outcomes (
      symbol text not null,
      strategy text not null,
      model_version text not null,
      market_source text not null,
      time timestamptz not null,
      probability double precision not null,
      confidence double precision not null,
      interval_level double precision not null,
      realized_return double precision not null,
      correct boolean not null,
      covered boolean,
      resolved_at timestamptz not null default now(),
      constraint prediction_outcomes_pkey primary key (strategy, market_source, model_version, symbol, time),
      constraint prediction_outcomes_realized_return_finite check (${finite('realized_return')})
    )
  `.execute(db);
  await sql`
    create table prediction_outcomes_pending (
      symbol text not null,
      strategy text not null,
      model_version text not null,
      market_source text not null,
      time timestamptz not null,
      probability double precision not null,
      confidence double precision not null,
      interval_level double precision not null,
      interval_low double precision not null,
      interval_high double precision not null,
      constraint prediction_outcomes_pending_pkey primary key (market_source, time, symbol, strategy, model_version)
    )
  `.execute(db);
  await sql`comment on table prediction_outcomes is 'realized outcomes of prediction_history rows, same key; append-only'`.execute(db);
  await sql`comment on column prediction_outcomes.realized_return is 'adjClose[t+h] / adjClose[t] - 1'`.execute(db);
  await sql`comment on column prediction_outcomes.correct is '(probability >= 0.5) = (realized_return > 0): the likelier direction was right'`.execute(
    db,
  );
  await sql`
    comment on column prediction_outcomes.covered is
      'close[t] * adjClose[t+h] / adjClose[t] within [interval_low, interval_high]; null only if migrated from a row without it'
  `.execute(db);
  await sql`
    comment on table prediction_outcomes_pending is
      'prediction_history rows waiting for their outcome; added by the history writer, removed when the outcome is stored'
  `.execute(db);

  await sql`
    insert into prediction_outcomes (${KEY}, probability, confidence, interval_level, realized_return, correct, covered)
    select ${KEY}, probability, confidence, interval_level, realized_return, coalesce(correct, (probability >= 0.5) = (realized_return > 0)), covered
    from prediction_history
    where realized_return is not null
  `.execute(db);
  await sql`
    insert into prediction_outcomes_pending (${KEY}, probability, confidence, interval_level, interval_low, interval_high)
    select ${KEY}, probability, confidence, interval_level, interval_low, interval_high
    from prediction_history
    where realized_return is null
  `.execute(db);

  await sql`drop index if exists prediction_history_pending_idx`.execute(db);
  await sql`drop index if exists prediction_history_resolved_idx`.execute(db);
  await sql`alter table prediction_history drop column realized_return, drop column correct, drop column covered`.execute(db);

  await sql`
    create function prediction_history_outcomes_truncate() returns trigger language plpgsql as $$
    begin
      truncate prediction_outcomes, prediction_outcomes_pending;
      return null;
    end
    $$
  `.execute(db);
  await sql`
    create trigger prediction_history_outcomes_truncate after truncate on prediction_history
    for each statement execute function prediction_history_outcomes_truncate()
  `.execute(db);
}

/**
 * Outcomes back onto the history rows (on TimescaleDB, compressed chunks are decompressed first: the
 * UPDATE needs them so; the compression policy compresses them again). Outcomes whose history row no
 * longer exists have nowhere to go back to and are dropped with the table.
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists prediction_history_outcomes_truncate on prediction_history`.execute(db);
  await sql`drop function if exists prediction_history_outcomes_truncate()`.execute(db);
  await sql`
    alter table prediction_history add column realized_return double precision, add column correct boolean, add column covered boolean
  `.execute(db);
  await sql`
    alter table prediction_history add constraint prediction_history_realized_return_finite
    check (realized_return is null or (${finite('realized_return')}))
  `.execute(db);
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length > 0) {
    await sql`select decompress_chunk(c, if_compressed => true) from show_chunks('prediction_history') c`.execute(db);
  }
  await sql`
    update prediction_history h
    set realized_return = o.realized_return, correct = o.correct, covered = o.covered
    from prediction_outcomes o
    where o.symbol = h.symbol and o.strategy = h.strategy and o.model_version = h.model_version
      and o.market_source = h.market_source and o.time = h.time
  `.execute(db);
  await sql`
    create index prediction_history_pending_idx on prediction_history (time, symbol, strategy, model_version)
    where realized_return is null
  `.execute(db);
  await sql`
    create index prediction_history_resolved_idx on prediction_history (strategy, model_version, market_source, time)
    where realized_return is not null
  `.execute(db);
  await sql`comment on column prediction_history.realized_return is 'adjClose[t+h] / adjClose[t] - 1; null until bars after asOf + horizon exist'`.execute(
    db,
  );
  await sql`comment on column prediction_history.correct is '(probability >= 0.5) = (realized_return > 0): the likelier direction was right'`.execute(
    db,
  );
  await sql`comment on column prediction_history.covered is 'close[t] * adjClose[t+h] / adjClose[t] within [interval_low, interval_high]'`.execute(
    db,
  );
  await sql`drop table prediction_outcomes_pending`.execute(db);
  await sql`drop table prediction_outcomes`.execute(db);
}
