import type { Logger } from '../logger/logger.js';
import type { Database } from './database.js';
import { createPgliteDatabase } from './pglite.js';
import { createPostgresDatabase } from './postgres.js';

export type { Database, Db } from './database.js';
export type { Tables } from './tables.js';
export { migrateToLatest, pendingMigrations, migrationCount } from './migrate.js';
export { applyChunkInterval, type ChunkedTable } from './chunk-interval.js';

export type DatabaseSettings = { kind: 'postgres'; url: string; poolMax: number } | { kind: 'pglite'; dataDir: string };

/** Opens the configured engine: PostgreSQL when a URL is given, embedded PGlite otherwise. */
export function openDatabase(settings: DatabaseSettings, logger: Logger): Promise<Database> {
  return settings.kind === 'postgres'
    ? createPostgresDatabase({ url: settings.url, poolMax: settings.poolMax, logger })
    : createPgliteDatabase({ dataDir: settings.dataDir });
}
