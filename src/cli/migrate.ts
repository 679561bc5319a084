import { parseCli, runCli } from './args.js';
import { configFromEnvironment } from '../config/index.js';
import { migrateToLatest, openDatabase, pendingMigrations } from '../infra/db/index.js';
import { createLogger } from '../infra/logger/logger.js';

/**
 * `npm run migrate`: applies pending migrations to the configured database (the same ones the gateway
 * applies at start-up, under the same advisory lock) and prints what it did.
 */
const USAGE = `usage: npm run migrate

Applies pending migrations to the configured database (DATABASE_URL, or the embedded one in DATA_DIR)
and prints what it did. Takes no arguments.
`;

async function main(): Promise<number> {
  const parsed = parseCli({ name: 'migrate', usage: USAGE });
  if ('exitCode' in parsed) return parsed.exitCode;
  const config = configFromEnvironment();
  if (!config) return 1;
  const logger = createLogger({ ...config.log, level: 'warn' });
  const database = await openDatabase(config.database, logger);
  try {
    const before = await pendingMigrations(database.db);
    const { applied } = await migrateToLatest(database.db);
    const where = database.engine === 'pglite' ? `embedded database in ${config.dataDir}` : 'PostgreSQL';
    process.stdout.write(
      applied.length
        ? `applied ${applied.length} migration(s) to the ${where}: ${applied.join(', ')}\n`
        : `the ${where} is up to date (${before.length} pending before, none now)\n`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`migration failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}

await runCli('migrate', main);
