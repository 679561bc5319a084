import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import { HISTORY_COLUMNS, HISTORY_FIELDS, historyKey, type HistoryField, type HistoryRow, type HistorySink } from './history.types.js';

/**
 * Rows per INSERT statement. Rows travel as one array per column through `unnest`, so a statement
 * binds one parameter per column however many rows it carries (the style of the bars import; see
 * docs/decisions/history-write-path.md).
 */
const INSERT_CHUNK_ROWS = 10_000;

/**
 * All SQL writing `prediction_history` (and the outcome queue beside it).
 *
 * ```ts
 * const history = new HistoryRepository(database.db);
 * await history.insertMany(rows); // 2: rows whose key was already stored are skipped
 * ```
 *
 * Chunks run one after another in one transaction; docs/decisions/history-write-path.md says why
 * (and what the time of a bulk insert is spent on).
 */
export class HistoryRepository implements HistorySink {
  constructor(private readonly db: Db) {}

  /**
   * Inserts rows whose key (symbol, strategy, model version, market source, time) is not stored yet and resolves with
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

/** The insert's column list, each column's array of values, and the select turning them into a row. */
const COLUMNS = sql.join(HISTORY_FIELDS.map((field) => sql.ref(HISTORY_COLUMNS[field].column)));
const SELECTED = sql.join(
  HISTORY_FIELDS.map((field) =>
    field === 'time' ? sql`to_timestamp(${sql.ref('r.time')} / 1000.0)` : sql.ref(`r.${HISTORY_COLUMNS[field].column}`),
  ),
);

/** What the outcome job needs of a row (and copies onto its outcome), queued beside it. */
const PENDING_COLUMNS = sql.join(
  [
    'symbol',
    'strategy',
    'model_version',
    'market_source',
    'time',
    'probability',
    'confidence',
    'interval_level',
    'interval_low',
    'interval_high',
  ].map((c) => sql.ref(c)),
);

function valuesOf(rows: readonly HistoryRow[], field: HistoryField) {
  const values = field === 'time' ? rows.map((row) => row.time.getTime()) : rows.map((row) => row[field]);
  return sql`${values}::${sql.raw(HISTORY_COLUMNS[field].sqlType)}[]`;
}

/**
 * One statement. Times travel as float8 epoch milliseconds: pg formats each Date parameter as a
 * local-time string, which for thousands of rows costs more than the numbers; to_timestamp(ms / 1000)
 * is exact to the microsecond. The count is taken server-side from the rows actually inserted.
 *
 * Every row inserted is also queued for its realized outcome (`prediction_outcomes_pending`, migration
 * 0013) in the same statement, so no row can be stored without being queued: the outcome job reads
 * that queue, never prediction_history itself. A row skipped as a repeat is not queued again.
 */
async function insertChunk(db: Db, rows: readonly HistoryRow[]): Promise<number> {
  const { rows: counts } = await sql<{ inserted: number }>`
    with written as (
      insert into prediction_history (${COLUMNS})
      select ${SELECTED}
      from unnest(${sql.join(HISTORY_FIELDS.map((field) => valuesOf(rows, field)))}) as r(${COLUMNS})
      on conflict (symbol, strategy, model_version, market_source, time) do nothing
      returning ${PENDING_COLUMNS}
    ), queued as (
      insert into prediction_outcomes_pending (${PENDING_COLUMNS})
      select ${PENDING_COLUMNS} from written
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
