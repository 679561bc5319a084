import { applyChunkInterval, type Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import { SYNTHETIC_MARKET } from '../../infra/market-data/market-data.js';

/**
 * Days of prediction time per `prediction_history` chunk on TimescaleDB. A row's `time` is the bar the
 * prediction was made at, so the table fills as densely as the served market's bars times the keys
 * (symbol, strategy, model version): a daily market writes about 250 bar times a year, which is why a
 * year per chunk (the rows of 61 symbols, 2 strategies and 2 versions: about 60,000); the synthetic
 * market stamps a bar every SYNTHETIC_TICK_MS (17,280 a day at 5 s), so there a day per chunk holds
 * about as many rows as a year of a daily market would at 70 times the symbols. HISTORY_CHUNK_DAYS,
 * when set, wins. docs/decisions/timescaledb-chunks.md has the reasoning.
 */
export function historyChunkDays(configured: number | undefined, servingMarket: string): number {
  return configured ?? (servingMarket === SYNTHETIC_MARKET ? 1 : 365);
}

/** Applies the history chunk width at start-up (TimescaleDB only; see applyChunkInterval), logging a change. */
export async function applyHistoryChunkInterval(database: Pick<Database, 'db' | 'timescale'>, days: number, logger: Logger): Promise<void> {
  const was = await applyChunkInterval(database, 'prediction_history', days);
  if (was !== undefined) logger.info({ days, was }, 'history chunk interval set (chunks created from now on)');
}
