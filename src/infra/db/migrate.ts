import { Migrator, type MigrationResultSet } from 'kysely';
import { migrations } from '../../../db/migrations/index.js';
import type { Db } from './database.js';

const provider = { getMigrations: async () => migrations };

function migrator(db: Db): Migrator {
  return new Migrator({ db, provider });
}

/**
 * Applies every pending migration. Kysely's PostgreSQL adapter holds an advisory lock for the whole
 * run, so instances starting together queue behind each other and only the first one migrates.
 * Throws with the failing migration's name if one fails; the migrations before it stay applied.
 */
export async function migrateToLatest(db: Db): Promise<{ applied: string[] }> {
  const result: MigrationResultSet = await migrator(db).migrateToLatest();
  const applied = (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? '(unknown)';
    const cause = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`migration ${failed} failed: ${cause}`, { cause: result.error });
  }
  return { applied };
}

/** Names of known migrations not yet applied to this database. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export const migrationCount = Object.keys(migrations).length;
