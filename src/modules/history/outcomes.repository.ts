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

const UPDATE_CHUNK_ROWS = 10_000;

/**
 * The SQL of the outcome job: which rows wait for an outcome, and storing outcomes. Reads use the
 * partial index of pending rows (db/migrations/0004_prediction_outcomes.ts). Bound to one market: a
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
      from prediction_history
      where realized_return is null and market_source = ${this.market} ${symbols ? sql`and symbol = any(${[...symbols]}::text[])` : sql``}
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
      from prediction_history
      where realized_return is null and market_source = ${this.market}
        and symbol = any(${[...symbols]}::text[]) and time >= ${since}::timestamptz ${after}
      order by time, symbol, strategy, model_version
      limit ${limit}
    `.execute(this.db);
    return rows;
  }

  /**
   * Stores outcomes, one UPDATE per 10,000 rows (rows travel as column arrays through `unnest`). Only rows
   * still pending are touched, so two jobs racing write each outcome once. Resolves with rows updated.
   */
  saveOutcomes(outcomes: readonly Outcome[]): Promise<number> {
    return outcomes.length === 0 ? Promise.resolve(0) : this.announce(() => this.#save(outcomes));
  }

  async #save(outcomes: readonly Outcome[]): Promise<number> {
    let updated = 0;
    for (let start = 0; start < outcomes.length; start += UPDATE_CHUNK_ROWS) {
      const chunk = outcomes.slice(start, start + UPDATE_CHUNK_ROWS);
      const column = <K extends keyof Outcome>(key: K) => chunk.map((o) => o[key]);
      const result = await sql`
        update prediction_history as h
        set realized_return = o.realized_return, correct = o.correct, covered = o.covered
        from unnest(
          ${column('symbol')}::text[], ${column('strategy')}::text[], ${column('modelVersion')}::text[],
          ${chunk.map((o) => o.time.getTime())}::float8[], ${column('realizedReturn')}::float8[],
          ${column('correct')}::boolean[], ${column('covered')}::boolean[]
        ) as o(symbol, strategy, model_version, epoch_ms, realized_return, correct, covered)
        where h.symbol = o.symbol and h.strategy = o.strategy and h.model_version = o.model_version
          and h.market_source = ${this.market} and h.time = to_timestamp(o.epoch_ms / 1000.0) and h.realized_return is null
      `.execute(this.db);
      updated += Number(result.numAffectedRows ?? 0);
    }
    return updated;
  }
}
