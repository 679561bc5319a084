import type { ColumnType, Generated } from 'kysely';

/**
 * Row types of every table, as Kysely sees them. Migrations in db/migrations create these tables; a
 * repository that reads or writes a table is the only code that names it.
 */
export interface Tables {
  audit_log: AuditLogTable;
  market_bars: MarketBarsTable;
}

export interface AuditLogTable {
  id: Generated<number>;
  time: ColumnType<Date, Date | undefined, never>;
  actor: string;
  action: string;
  subject: string;
  detail: ColumnType<Record<string, unknown>, string, never>;
}

/** One stored OHLCV bar; see db/migrations/0002_market_bars.ts for its constraints. */
export interface MarketBarsTable {
  symbol: string;
  time: Date;
  open: number;
  high: number;
  low: number;
  close: number;
  adj_close: number;
  volume: number;
  source: string;
}
