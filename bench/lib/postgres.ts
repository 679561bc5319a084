import pg from 'pg';
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

/**
 * A fresh database; with `timescale`, the timescaledb extension is created in it first, so the
 * migrations make hypertables (check {@link timescaleOnServer} before asking).
 */
export async function createScratchDatabase(kind: string, options: { timescale?: boolean } = {}): Promise<ScratchDatabase> {
  const name = `sibyl_bench_${kind.replace(/\W/g, '_')}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  await runStatement(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  if (options.timescale) {
    try {
      await runStatement(url.toString(), 'create extension timescaledb');
    } catch (error) {
      await runStatement(adminUrl, `drop database if exists ${name} with (force)`);
      throw error;
    }
  }
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

/**
 * Whether scratch databases can have TimescaleDB: the extension installed on the server and its library
 * preloaded. The benchmarks that compare it with plain PostgreSQL measure it only then, and say why not.
 */
export async function timescaleOnServer(): Promise<{ available: true; version: string } | { available: false; reason: string }> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: string }>(
      "select default_version as version from pg_available_extensions where name = 'timescaledb'",
    );
    const version = rows[0]?.version;
    if (!version) return { available: false, reason: 'the timescaledb extension is not installed on this PostgreSQL' };
    const preload =
      (await client.query<{ value: string }>("select current_setting('shared_preload_libraries') as value")).rows[0]?.value ?? '';
    if (!preload.split(',').some((library) => library.trim().replace(/"/g, '') === 'timescaledb'))
      return { available: false, reason: `timescaledb ${version} is installed but not in shared_preload_libraries ('${preload}')` };
    return { available: true, version };
  } finally {
    await client.end();
  }
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
