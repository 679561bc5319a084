import { sql, type Kysely } from 'kysely';
import { migrations } from '../../db/migrations/index.js';
import type { Database, Db } from '../../src/infra/db/index.js';

/**
 * Steps a migrated database down through every migration from the newest to `first` (inclusive), then
 * up again to the newest, by calling the migrations' own `down` and `up` in order: what a rollback to
 * before `first` and a redeploy do. Tests use it to show a migration's down and up keep data and
 * readers whole with everything after it in place too.
 */
export async function redoMigrationsFrom(db: Db, first: string): Promise<void> {
  const names = Object.keys(migrations).sort();
  if (!names.includes(first)) throw new Error(`no migration named ${first}`);
  const affected = names.filter((name) => name >= first);
  const migrationDb = db as unknown as Kysely<unknown>;
  for (const name of [...affected].reverse()) await migrations[name]!.down!(migrationDb);
  for (const name of affected) await migrations[name]!.up(migrationDb);
}

/**
 * TimescaleDB: materializes the continuous aggregates of prediction_history over all of time, as their
 * refresh policies do in the background (a test cannot wait for the job scheduler). A policy run that
 * is refreshing at that moment (0012 schedules the first one at once) makes TimescaleDB refuse a second
 * refresh (55P03); this waits for it and tries again. Without TimescaleDB there is nothing to refresh
 * (the rollup tables are kept by triggers).
 */
export async function refreshHistoryAggregates(database: Pick<Database, 'db' | 'timescale'>): Promise<void> {
  if (!database.timescale) return;
  for (const view of ['prediction_history_hourly', 'prediction_history_daily']) {
    for (let attempt = 1; ; attempt++) {
      try {
        await sql`call refresh_continuous_aggregate(${view}::regclass, null, null)`.execute(database.db);
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== '55P03' || attempt >= 300) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
