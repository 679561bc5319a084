import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../../src/infra/db/index.js';

/**
 * Realized outcomes as tests set and read them, over the tables of db/migrations/0013_outcomes_table.ts
 * (outcomes in `prediction_outcomes`, keyed like `prediction_history`; rows waiting for one in
 * `prediction_outcomes_pending`).
 */

/**
 * Stores outcomes chosen by the test for history rows, as the outcome job would (appended, and the rows
 * taken off the queue), instead of computing them from bars. `from` names the history rows as `h`
 * (e.g. `prediction_history h join unnest(…) as o(hash, r) on h.features_hash = o.hash`); each value
 * is an expression over it. `correct` defaults to its definition, (probability ≥ 0.5) = (realized
 * return > 0); `covered` to null (unknown). Rows whose realized return comes out null stay pending. An
 * outcome already stored for a row is replaced (tests rewrite them; the job never does). Resolves with
 * the number stored.
 */
export async function storeOutcomes(
  db: Db,
  spec: { from: RawBuilder<unknown>; realizedReturn: RawBuilder<unknown>; correct?: RawBuilder<unknown>; covered?: RawBuilder<unknown> },
): Promise<number> {
  const correct = spec.correct ?? sql`(h.probability >= 0.5) = (${spec.realizedReturn} > 0)`;
  const { rows } = await sql<{ stored: number }>`
    with resolved as materialized (
      select h.symbol, h.strategy, h.model_version, h.market_source, h.time, h.probability, h.confidence, h.interval_level,
             (${spec.realizedReturn})::float8 as realized_return, (${correct})::boolean as correct, (${spec.covered ?? sql`null`})::boolean as covered
      from ${spec.from}
    ), stored as (
      insert into prediction_outcomes (symbol, strategy, model_version, market_source, time,
                                       probability, confidence, interval_level, realized_return, correct, covered)
      select * from resolved where realized_return is not null
      on conflict (strategy, market_source, model_version, symbol, time)
      do update set realized_return = excluded.realized_return, correct = excluded.correct, covered = excluded.covered
      returning 1
    ), dequeued as (
      delete from prediction_outcomes_pending p
      using resolved r
      where r.realized_return is not null and p.symbol = r.symbol and p.strategy = r.strategy
        and p.model_version = r.model_version and p.market_source = r.market_source and p.time = r.time
    )
    select count(*)::int as stored from stored
  `.execute(db);
  return rows[0]?.stored ?? 0;
}

/**
 * Forgets the outcomes of the history rows `from` names (as `h`) and queues them again, as if never
 * resolved. Resolves with the number forgotten.
 */
export async function forgetOutcomes(db: Db, from: RawBuilder<unknown>): Promise<number> {
  const { rows } = await sql<{ forgotten: number }>`
    with rows as materialized (
      select h.symbol, h.strategy, h.model_version, h.market_source, h.time,
             h.probability, h.confidence, h.interval_level, h.interval_low, h.interval_high
      from ${from}
    ), forgotten as (
      delete from prediction_outcomes o using rows r
      where o.symbol = r.symbol and o.strategy = r.strategy and o.model_version = r.model_version
        and o.market_source = r.market_source and o.time = r.time
      returning o.symbol, o.strategy, o.model_version, o.market_source, o.time
    ), queued as (
      insert into prediction_outcomes_pending
        (symbol, strategy, model_version, market_source, time, probability, confidence, interval_level, interval_low, interval_high)
      select r.* from rows r
      join forgotten f on f.symbol = r.symbol and f.strategy = r.strategy and f.model_version = r.model_version
       and f.market_source = r.market_source and f.time = r.time
    )
    select count(*)::int as forgotten from forgotten
  `.execute(db);
  return rows[0]?.forgotten ?? 0;
}

/** A history row with its outcome columns (null while pending), as the outcome columns of history used to be. */
export interface HistoryWithOutcome {
  readonly time: Date;
  readonly symbol: string;
  readonly strategy: string;
  readonly model_version: string;
  readonly market_source: string;
  readonly probability: number;
  readonly confidence: number;
  readonly interval_level: number;
  readonly interval_low: number;
  readonly interval_high: number;
  readonly features_hash: string;
  readonly realized_return: number | null;
  readonly correct: boolean | null;
  readonly covered: boolean | null;
}

/** Every history row (optionally only those `where` selects, over `h`) with its outcome, by symbol, strategy, version, time. */
export async function historyWithOutcomes(db: Db, where: RawBuilder<unknown> = sql`true`): Promise<HistoryWithOutcome[]> {
  const { rows } = await sql<HistoryWithOutcome>`
    select h.time, h.symbol, h.strategy, h.model_version, h.market_source, h.probability, h.confidence,
           h.interval_level, h.interval_low, h.interval_high, h.features_hash, o.realized_return, o.correct, o.covered
    from prediction_history h
    left join prediction_outcomes o
      on o.symbol = h.symbol and o.strategy = h.strategy and o.model_version = h.model_version
     and o.market_source = h.market_source and o.time = h.time
    where ${where}
    order by h.symbol, h.strategy, h.model_version, h.market_source, h.time
  `.execute(db);
  return rows;
}
