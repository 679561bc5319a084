import { type Kysely, sql } from 'kysely';

/**
 * Stored OHLCV bars (imported CSVs, recorded feeds): the market's truth when present. The primary key
 * (symbol, time) is also the index every read uses: "the last N bars of a symbol up to a time" is a
 * backward scan of it.
 *
 * The CHECKs are the last line of defence behind the importer's own validation: a bar that breaks them
 * is a vendor error and must never reach features. `x < 'Infinity'` also refuses NaN, which PostgreSQL
 * orders above every number (so `NaN > 0` alone would pass).
 *
 * On TimescaleDB the table becomes a hypertable on `time` (it is append-mostly time series); without the
 * extension it is a plain table with the same columns and constraints, so the rest of the code never
 * needs to know which.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const positive = (column: string) => sql`${sql.ref(column)} > 0 and ${sql.ref(column)} < 'Infinity'`;
  await db.schema
    .createTable('market_bars')
    .addColumn('symbol', 'text', (col) => col.notNull())
    .addColumn('time', 'timestamptz', (col) => col.notNull())
    .addColumn('open', 'double precision', (col) => col.notNull())
    .addColumn('high', 'double precision', (col) => col.notNull())
    .addColumn('low', 'double precision', (col) => col.notNull())
    .addColumn('close', 'double precision', (col) => col.notNull())
    .addColumn('adj_close', 'double precision', (col) => col.notNull())
    .addColumn('volume', 'double precision', (col) => col.notNull())
    .addColumn('source', 'text', (col) => col.notNull())
    .addPrimaryKeyConstraint('market_bars_pkey', ['symbol', 'time'])
    .addCheckConstraint(
      'market_bars_prices_positive',
      sql`${positive('open')} and ${positive('high')} and ${positive('low')} and ${positive('close')} and ${positive('adj_close')}`,
    )
    .addCheckConstraint('market_bars_ohlc_consistent', sql`low <= open and low <= close and open <= high and close <= high`)
    .addCheckConstraint('market_bars_volume_nonnegative', sql`volume >= 0 and volume < 'Infinity'`)
    .execute();

  const { rows } = await sql<{ present: number }>`select 1 as present from pg_extension where extname = 'timescaledb'`.execute(db);
  if (rows.length > 0) {
    await sql`select create_hypertable('market_bars', 'time', if_not_exists => true, migrate_data => true)`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('market_bars').execute();
}
