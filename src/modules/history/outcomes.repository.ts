import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';

/** A recorded prediction still waiting for its outcome: what computing one needs. */
export interface PendingOutcome {
  readonly symbol: string;
  readonly strategy: string;
  readonly modelVersion: string;
  readonly time: Date;
  readonly probability: number;
  readonly intervalLow: number;
  readonly intervalHigh: number;
}

/** An outcome to store, keyed like the row it belongs to. */
export interface Outcome {
  readonly symbol: string;
  readonly strategy: string;
  readonly modelVersion: string;
  readonly time: Date;
  readonly realizedReturn: number;
  readonly correct: boolean;
  readonly covered: boolean;
}

/** Where paging through pending rows continues: after this key, in (time, symbol, strategy, model_version) order. */
export interface PendingCursor {
  readonly time: Date;
  readonly symbol: string;
  readonly strategy: string;
  readonly modelVersion: string;
}

const SAVE_CHUNK_ROWS = 10_000;

/**
 * The SQL of the outcome job: which predictions wait for an outcome, and storing outcomes. Both touch
 * only the outcome tables of migration 0013: the queue `prediction_outcomes_pending` (filled by the
 * history writer, paged by its key) and the append-only `prediction_outcomes`; never
 * `prediction_history`, whose rows may sit in compressed TimescaleDB chunks. Bound to one market: a
 * row's outcome is computed from the bars of the market it was predicted from, so the job reading the
 * bars store resolves only `stored` rows, and the synthetic market only its own.
 */
export class OutcomesRepository {
  constructor(
    private readonly db: Db,
    /** The market whose rows are resolved (`market_source`), the one the job's bars come from. */
    private readonly market: string,
    /** Runs each write of outcomes (the response cache's announcement of a history change around it). */
    private readonly announce: <T>(write: () => Promise<T>) => Promise<T> = (write) => write(),
  ) {}

  /** Per symbol with pending rows: the oldest pending asOf and how many rows wait. */
  async pendingSymbols(symbols?: readonly string[]): Promise<Array<{ symbol: string; oldest: Date; rows: number }>> {
    const { rows } = await sql<{ symbol: string; oldest: Date; rows: number }>`
      select symbol, min(time) as oldest, count(*)::int as rows
      from prediction_outcomes_pending
      where market_source = ${this.market} ${symbols ? sql`and symbol = any(${[...symbols]}::text[])` : sql``}
      group by symbol
      order by symbol
    `.execute(this.db);
    return rows;
  }

  /**
   * Up to `limit` pending rows of `symbols` at or after `since`, after `cursor`, in key order (keyset
   * paging, so rows that stay pending never hide the ones behind them).
   */
  async pendingRows(symbols: readonly string[], since: Date, cursor: PendingCursor | undefined, limit: number): Promise<PendingOutcome[]> {
    const after = cursor
      ? sql`and (time, symbol, strategy, model_version) > (${cursor.time}::timestamptz, ${cursor.symbol}, ${cursor.strategy}, ${cursor.modelVersion})`
      : sql``;
    const { rows } = await sql<PendingOutcome>`
      select symbol, strategy, model_version as "modelVersion", time, probability,
             interval_low as "intervalLow", interval_high as "intervalHigh"
      from prediction_outcomes_pending
      where market_source = ${this.market}
        and symbol = any(${[...symbols]}::text[]) and time >= ${since}::timestamptz ${after}
      order by time, symbol, strategy, model_version
      limit ${limit}
    `.execute(this.db);
    return rows;
  }

  /**
   * Stores outcomes, one statement per 10,000 (rows travel as column arrays through `unnest`): each
   * statement takes the rows off the queue and appends their outcomes, so an outcome is stored exactly
   * when its row leaves the queue. Only queued rows are stored: of two jobs racing, the second finds
   * the row gone and stores nothing. Resolves with outcomes stored.
   */
  saveOutcomes(outcomes: readonly Outcome[]): Promise<number> {
    return outcomes.length === 0 ? Promise.resolve(0) : this.announce(() => this.#save(outcomes));
  }

  async #save(outcomes: readonly Outcome[]): Promise<number> {
    let stored = 0;
    for (let start = 0; start < outcomes.length; start += SAVE_CHUNK_ROWS) {
      const chunk = outcomes.slice(start, start + SAVE_CHUNK_ROWS);
      const column = <K extends keyof Outcome>(key: K) => chunk.map((o) => o[key]);
      const { rows } = await sql<{ stored: number }>`
        with o as (
          select symbol, strategy, model_version, to_timestamp(epoch_ms / 1000.0) as time, realized_return, correct, covered
          from unnest(
            ${column('symbol')}::text[], ${column('strategy')}::text[], ${column('modelVersion')}::text[],
            ${chunk.map((o) => o.time.getTime())}::float8[], ${column('realizedReturn')}::float8[],
            ${column('correct')}::boolean[], ${column('covered')}::boolean[]
          ) as o(symbol, strategy, model_version, epoch_ms, realized_return, correct, covered)
        ), dequeued as (
          delete from prediction_outcomes_pending p
          using o
          where p.market_source = ${this.market} and p.time = o.time and p.symbol = o.symbol
            and p.strategy = o.strategy and p.model_version = o.model_version
          returning p.symbol, p.strategy, p.model_version, p.market_source, p.time, p.probability, p.confidence, p.interval_level
        ), appended as (
          insert into prediction_outcomes (symbol, strategy, model_version, market_source, time,
                                           probability, confidence, interval_level, realized_return, correct, covered)
          select d.symbol, d.strategy, d.model_version, d.market_source, d.time,
                 d.probability, d.confidence, d.interval_level, o.realized_return, o.correct, o.covered
          from dequeued d
          join o on o.symbol = d.symbol and o.strategy = d.strategy and o.model_version = d.model_version and o.time = d.time
          on conflict do nothing
          returning 1
        )
        select count(*)::int as stored from appended
      `.execute(this.db);
      stored += rows[0]?.stored ?? 0;
    }
    return stored;
  }
}
