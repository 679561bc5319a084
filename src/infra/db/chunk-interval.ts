import { sql } from 'kysely';
import type { Database } from './database.js';

/** The hypertables (on TimescaleDB) whose chunk width is configured: BARS_CHUNK_DAYS, HISTORY_CHUNK_DAYS. */
export type ChunkedTable = 'market_bars' | 'prediction_history';

/**
 * On TimescaleDB, makes `table`'s chunks `days` wide from its next new chunk on: set_chunk_time_interval
 * shapes only chunks created after it, existing ones keep their width (docs/decisions/timescaledb-chunks.md
 * says how to rechunk stored data). Returns the width it replaced, in days, or undefined when nothing
 * changed: no TimescaleDB; a plain table (the extension created after the migrations had made plain
 * tables: nothing is chunked); or already `days` wide (so a restart with the same setting writes
 * nothing and takes no lock on the hypertable's catalog row).
 */
export async function applyChunkInterval(
  database: Pick<Database, 'db' | 'timescale'>,
  table: ChunkedTable,
  days: number,
): Promise<number | undefined> {
  if (!database.timescale) return undefined;
  if (!Number.isInteger(days) || days < 1)
    throw new RangeError(`chunk interval of ${table} must be a whole number of days ≥ 1; got ${days}`);
  const { rows } = await sql<{ days: number }>`
    select (extract(epoch from time_interval) / 86400)::float8 as days
    from timescaledb_information.dimensions
    where hypertable_schema = current_schema() and hypertable_name = ${table} and dimension_number = 1
  `.execute(database.db);
  const current = rows[0]?.days;
  if (current === undefined || current === days) return undefined;
  await sql`select set_chunk_time_interval(${table}::regclass, make_interval(days => ${days}::int))`.execute(database.db);
  return current;
}
