import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { PredictionHistoryTable } from '../../infra/db/tables.js';

/** A recorded prediction as resume needs it. */
export type RecordedPrediction = Pick<
  PredictionHistoryTable,
  | 'time'
  | 'symbol'
  | 'model_version'
  | 'horizon'
  | 'probability'
  | 'confidence'
  | 'signal'
  | 'expected_return'
  | 'interval_level'
  | 'interval_low'
  | 'interval_high'
  | 'features_hash'
>;

/**
 * The SQL of live signals: reading back what the monitor recorded, for subscribers that resume.
 *
 * ```ts
 * await new SignalsRepository(db, STORED_MARKET).recordedSince('direction-1d', ['AAPL', 'MSFT'], since, 1001);
 * ```
 */
export class SignalsRepository {
  constructor(
    private readonly db: Db,
    /** The market the monitor predicts from: a resuming subscriber is never replayed another market's rows. */
    private readonly market: string,
  ) {}

  /**
   * Recorded predictions of `strategy` for `symbols` with a time strictly after `since`, oldest first
   * (ties by symbol, then model version: the order the monitor publishes in), at most `limit`.
   * The (symbol, strategy, time desc) index finds each symbol's range.
   */
  async recordedSince(strategy: string, symbols: readonly string[], since: Date, limit: number): Promise<RecordedPrediction[]> {
    if (symbols.length === 0) return [];
    const { rows } = await sql<RecordedPrediction>`
      select time, symbol, model_version, horizon, probability, confidence, signal, expected_return,
             interval_level, interval_low, interval_high, features_hash
      from prediction_history
      where strategy = ${strategy} and market_source = ${this.market} and symbol = any(${[...new Set(symbols)]}::text[]) and time > ${since}
      order by time, symbol, model_version
      limit ${limit}
    `.execute(this.db);
    return rows;
  }
}
