import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { historyKey, type HistoryRow, type HistorySink } from './history.types.js';

/**
 * Rows per INSERT statement. Rows travel as thirteen column arrays through `unnest`, so a statement
 * binds thirteen parameters however many rows it carries (the style of the bars import, which measured
 * it against multi-row VALUES lists).
 */
const INSERT_CHUNK_ROWS = 10_000;

/**
 * All SQL over `prediction_history`.
 *
 * ```ts
 * const history = new HistoryRepository(database.db);
 * await history.insertMany(rows); // 2: rows whose key was already stored are skipped
 * ```
 *
 * Where the time of a bulk insert goes (bench/history.bench.ts, 10,000-row statements on the bench's
 * local PostgreSQL, measured statement by statement): ~135 ms per statement in the database, of which
 * ~20 ms is unnesting the arrays, ~30 ms the ON CONFLICT arbiter check (a NOT EXISTS pre-filter costs
 * the same), ~8 ms the rollup trigger and the rest the heap and its three indexes; building and encoding
 * the parameters here adds ~30% on top. Handing the next chunk to the transaction before the previous one
 * answered gained nothing measurable (Kysely runs a transaction's queries one at a time anyway) and
 * made a failed chunk's rollback race the chunks queued behind it, so chunks run one after another.
 */
export class HistoryRepository implements HistorySink {
  constructor(private readonly db: Db) {}

  /**
   * Inserts rows whose key (symbol, strategy, model version, time) is not stored yet and resolves with
   * how many that was; a stored key is skipped, never updated, so inserting the same rows again is a
   * no-op. If `rows` holds a key twice, the first one is inserted. More than one chunk runs in one
   * transaction, so a row refused by a CHECK leaves the table as it was and the count is exact.
   */
  async insertMany(rows: readonly HistoryRow[]): Promise<number> {
    const unique = firstPerKey(rows);
    if (unique.length === 0) return 0;
    const insertAll = async (db: Db) => {
      let inserted = 0;
      for (let start = 0; start < unique.length; start += INSERT_CHUNK_ROWS) {
        inserted += await insertChunk(db, unique.slice(start, start + INSERT_CHUNK_ROWS));
      }
      return inserted;
    };
    return unique.length <= INSERT_CHUNK_ROWS ? insertAll(this.db) : this.db.transaction().execute(insertAll);
  }
}

/**
 * One statement. Times travel as float8 epoch milliseconds: pg formats each Date parameter as a
 * local-time string, which for thousands of rows costs more than the numbers; to_timestamp(ms / 1000)
 * is exact to the microsecond. The count is taken server-side from the rows actually inserted.
 */
async function insertChunk(db: Db, rows: readonly HistoryRow[]): Promise<number> {
  const column = <K extends keyof HistoryRow>(key: K) => rows.map((row) => row[key]);
  const { rows: counts } = await sql<{ inserted: number }>`
    with written as (
      insert into prediction_history (
        time, symbol, strategy, model_version, horizon, probability, confidence, signal,
        expected_return, interval_level, interval_low, interval_high, features_hash
      )
      select to_timestamp(epoch_ms / 1000.0), symbol, strategy, model_version, horizon, probability, confidence, signal,
             expected_return, interval_level, interval_low, interval_high, features_hash
      from unnest(
        ${rows.map((row) => row.time.getTime())}::float8[], ${column('symbol')}::text[], ${column('strategy')}::text[],
        ${column('modelVersion')}::text[], ${column('horizon')}::text[], ${column('probability')}::float8[],
        ${column('confidence')}::float8[], ${column('signal')}::text[], ${column('expectedReturn')}::float8[],
        ${column('intervalLevel')}::float8[], ${column('intervalLow')}::float8[], ${column('intervalHigh')}::float8[],
        ${column('featuresHash')}::text[]
      ) as r(epoch_ms, symbol, strategy, model_version, horizon, probability, confidence, signal,
             expected_return, interval_level, interval_low, interval_high, features_hash)
      on conflict (symbol, strategy, model_version, time) do nothing
      returning 1
    )
    select count(*)::int as inserted from written
  `.execute(db);
  return counts[0]?.inserted ?? 0;
}

/**
 * `on conflict do nothing` would also skip a repeat within one statement, but which of the two wins
 * would then be up to the executor; choosing here makes "the first one" a guarantee.
 */
function firstPerKey(rows: readonly HistoryRow[]): HistoryRow[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const key = historyKey(row);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
