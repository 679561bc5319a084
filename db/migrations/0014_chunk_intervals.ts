import { type Kysely, sql } from 'kysely';

/**
 * Numbered after 0011-0013, which were written beside it; it depends on none of them.
 *
 * TimescaleDB only (nothing happens without the extension): chunks sized for the data instead of
 * create_hypertable's default of 7 days, which over 21 years of daily bars made 1,121 chunks of about
 * 300 rows each, every one of them planned and locked by any read that is not bounded by time
 * (docs/decisions/timescaledb-chunks.md has the figures and the reasoning).
 *
 * - `market_bars`: 365-day chunks. Daily bars of 61 symbols are about 15,000 rows a year; 21 years make
 *   22 chunks.
 * - `prediction_history`: 365-day chunks. Its `time` is the bar a prediction was made at, so a daily
 *   market writes one row per (symbol, strategy, model version) per trading day (about 60,000 a year
 *   here), the same density as the bars times the keys.
 *
 * These are the defaults of BARS_CHUNK_DAYS and HISTORY_CHUNK_DAYS, which the gateway applies at every
 * start (src/infra/db/chunk-interval.ts); they are set here too so that a database migrated by a CLI
 * (`npm run migrate`, `npm run import`) before any gateway starts gets them before its first chunk.
 * set_chunk_time_interval only shapes chunks created after it: existing chunks keep their width (the
 * decision record says how to rechunk data stored before this migration).
 */
const DAY_INTERVAL = (days: number) => sql`make_interval(days => ${sql.lit(days)})`;

async function timescale(db: Kysely<unknown>): Promise<boolean> {
  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  return rows.length > 0;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(await timescale(db))) return;
  await sql`select set_chunk_time_interval('market_bars', ${DAY_INTERVAL(365)})`.execute(db);
  await sql`select set_chunk_time_interval('prediction_history', ${DAY_INTERVAL(365)})`.execute(db);
}

/** Back to create_hypertable's default (7 days), for chunks created from now on. */
export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(await timescale(db))) return;
  await sql`select set_chunk_time_interval('market_bars', ${DAY_INTERVAL(7)})`.execute(db);
  await sql`select set_chunk_time_interval('prediction_history', ${DAY_INTERVAL(7)})`.execute(db);
}
