import { cliConfig, type CliIo, parseCli, runAsCommand } from './args.js';
import { openCliDatabase } from './database-job.js';
import { migrateToLatest, pendingMigrations } from '../infra/db/index.js';
import { createLogger } from '../infra/logger/logger.js';

/**
 * `npm run migrate`: applies pending migrations to the configured database (the same ones the gateway
 * applies at start-up, under the same advisory lock) and prints what it did.
 */
const USAGE = `usage: npm run migrate

Applies pending migrations to the configured database (DATABASE_URL, or the embedded one in DATA_DIR)
and prints what it did. Takes no arguments.
`;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'migrate', usage: USAGE }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const config = cliConfig(io);
  if (!config) return 1;
  const logger = createLogger({ ...config.log, level: 'warn' });
  const database = await openCliDatabase(config, logger);
  try {
    const before = await pendingMigrations(database.db);
    const { applied } = await migrateToLatest(database.db);
    const where = database.engine === 'pglite' ? `embedded database in ${config.dataDir}` : 'PostgreSQL';
    io.out(
      applied.length
        ? `applied ${applied.length} migration(s) to the ${where}: ${applied.join(', ')}\n`
        : `the ${where} is up to date (${before.length} pending before, none now)\n`,
    );
    return 0;
  } catch (error) {
    io.err(`migration failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}

await runAsCommand(import.meta.url, 'migrate', main);
