import { readdirSync } from 'node:fs';
import path from 'node:path';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { marketData } from './market-source.js';
import { createTestDatabase, type TestDatabase } from './services.js';

/**
 * Helpers for the scheduled-retraining tests: real bars from ../shared/data/market, and a cron
 * expression that fires once, at a given second, so a test waits seconds, not minutes.
 */

/** The real daily bars of `symbols` from `from` on (their CSVs in ../shared/data/market/daily_adjusted), oldest first. */
export async function realBars(symbols: readonly string[], from: string, to = '2100-01-01'): Promise<Bar[]> {
  const directory = path.join(marketData, 'daily_adjusted');
  const files = readdirSync(directory);
  const bars: Bar[] = [];
  for (const symbol of symbols) {
    const file = files.find((f) => f.startsWith(`DA-${symbol}-T-`));
    if (!file) throw new Error(`no CSV for ${symbol} in ${directory}`);
    const parsed = await readBarsCsvFile(path.join(directory, file));
    if (!parsed.ok) throw new Error(`${file}: ${parsed.reason}`);
    bars.push(...parsed.bars.filter((b) => b.time >= new Date(from) && b.time < new Date(to)));
  }
  return bars.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.time.getTime() - b.time.getTime());
}

/** A 6-field cron expression (seconds first) matching only `at`'s second, read in UTC (RETRAIN_TIMEZONE=UTC). */
export function cronAt(at: Date): string {
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} *`;
}

/** The whole second `seconds` from now, and the schedule firing then (plus the env the scheduler needs). */
export function fireIn(seconds: number): { at: Date; env: Record<string, string> } {
  const at = new Date(Math.ceil((Date.now() + seconds * 1000) / 1000) * 1000);
  return { at, env: { RETRAIN_SCHEDULE: cronAt(at), RETRAIN_TIMEZONE: 'UTC' } };
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A fresh test database (PGlite or the configured PostgreSQL) holding `bars`, migrated, not yet opened by a gateway. */
export async function databaseWithBars(bars: readonly Bar[]): Promise<TestDatabase> {
  const database = await createTestDatabase();
  const direct = await openDatabase(database.settings, createLogger({ level: 'silent', format: 'json' }));
  try {
    await migrateToLatest(direct.db);
    await new BarsRepository(direct.db).upsert(bars);
  } finally {
    await direct.close();
  }
  return database;
}
