import type { CliIo } from './args.js';
import type { Config } from '../config/index.js';
import { applyChunkInterval, migrateToLatest, openDatabase, type Database, type Db } from '../infra/db/index.js';
import { createLogger, type Logger } from '../infra/logger/logger.js';

/**
 * The configured database, for a CLI, with a logger that only speaks up for warnings. Its failure
 * (another process holding the embedded data directory, PostgreSQL unreachable) is thrown, for
 * runCli (args.ts) to print as the one line every CLI prints for it: `<cli>: <reason>`, exit 1.
 */
export function openCliDatabase(config: Config, logger: Logger = createLogger({ ...config.log, level: 'warn' })): Promise<Database> {
  return openDatabase(config.database, logger);
}

/** Shows a job's progress on stderr: a redrawn bar at a terminal, one line per step in logs and pipes. */
export interface ProgressDisplay<Progress> {
  update(progress: Progress): void;
  stop(): void;
}

export interface DatabaseJob<Progress> {
  /** Names the job in its failure line (`<name> failed: …`). */
  name: string;
  display: { bar(): ProgressDisplay<Progress>; lines(): ProgressDisplay<Progress> };
  run(db: Db, context: { logger: Logger; onProgress: (progress: Progress) => void }): Promise<{ summary: string; exitCode: number }>;
}

/**
 * The life of a long-running CLI (import, outcomes) on the configured database: open it (a failure
 * throws, see {@link openCliDatabase}), migrate it, run the job with a progress display, print its
 * summary to stdout, and close the database whatever happens. Returns the exit code.
 */
export async function runDatabaseJob<Progress>(config: Config, io: CliIo, job: DatabaseJob<Progress>): Promise<number> {
  const logger = createLogger({ ...config.log, level: 'warn' });
  const database = await openCliDatabase(config, logger);
  const display = process.stderr.isTTY ? job.display.bar() : job.display.lines();
  try {
    await migrateToLatest(database.db);
    // As the gateway does at start-up: an import run before any gateway start writes chunks of the configured width.
    await applyChunkInterval(database, 'market_bars', config.barsChunkDays);
    const { summary, exitCode } = await job.run(database.db, { logger, onProgress: display.update });
    display.stop();
    io.out(summary);
    return exitCode;
  } catch (error) {
    display.stop();
    io.err(`${job.name} failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}
