import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { registerCleanup } from './cleanup.js';
import { runStatement } from '../../test/helpers/services.js';

/**
 * Scratch databases on the machine's PostgreSQL. Each benchmark creates its own, named
 * `sibyl_bench_…`, and drops it when done (or when the run is interrupted), so runs never see each
 * other's rows and no existing database is touched. BENCH_POSTGRES_URL points at another server.
 */
const adminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

let counter = 0;

export async function createScratchDatabase(kind: string): Promise<ScratchDatabase> {
  const name = `sibyl_bench_${kind.replace(/\W/g, '_')}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  await runStatement(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    unregister();
    await runStatement(adminUrl, `drop database if exists ${name} with (force)`);
  };
  const unregister = registerCleanup(drop);
  return { name, url: url.toString(), drop };
}

/** Opens a scratch database through the project's own code and applies the migrations. */
export async function openMigrated(url: string): Promise<Database> {
  const database = await openDatabase({ kind: 'postgres', url, poolMax: 4 }, createLogger({ level: 'silent', format: 'json' }));
  await migrateToLatest(database.db);
  return database;
}

/** `count` ticker-like symbols: S000, S001, … */
export function benchSymbols(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `S${String(i).padStart(3, '0')}`);
}

/**
 * A fresh scratch database holding `barsPerSymbol` daily bars of the seeded synthetic market for each
 * symbol, stored through BarsRepository (the import path), so the gateway started on it serves the bars
 * store over SQL exactly as it would serve imported data.
 */
export async function seededDatabase(kind: string, symbols: readonly string[], barsPerSymbol = 250): Promise<ScratchDatabase> {
  const scratch = await createScratchDatabase(kind);
  try {
    const market = createSyntheticMarket({ symbols, seed: 7, historyBars: barsPerSymbol, startTime: new Date('2024-06-03T00:00:00Z') });
    const bars = [...(await market.fetchBars(symbols, { lookback: barsPerSymbol })).values()].flat();
    const database = await openMigrated(scratch.url);
    try {
      await new BarsRepository(database.db).upsert(bars);
    } finally {
      await database.close();
    }
    return scratch;
  } catch (error) {
    await scratch.drop();
    throw error;
  }
}
