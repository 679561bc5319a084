import type { Config } from '../config/index.js';
import { migrateToLatest, openDatabase, type Db } from '../infra/db/index.js';
import { createLogger, type Logger } from '../infra/logger/logger.js';

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
 * The life of a long-running CLI (import, outcomes) on the configured database: open it (a failure is
 * one line and exit 1), migrate it, run the job with a progress display, print its summary to stdout,
 * and close the database whatever happens. Returns the exit code.
 */
export async function runDatabaseJob<Progress>(config: Config, job: DatabaseJob<Progress>): Promise<number> {
  const logger = createLogger({ ...config.log, level: 'warn' });
  let database;
  try {
    database = await openDatabase(config.database, logger);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const display = process.stderr.isTTY ? job.display.bar() : job.display.lines();
  try {
    await migrateToLatest(database.db);
    const { summary, exitCode } = await job.run(database.db, { logger, onProgress: display.update });
    display.stop();
    process.stdout.write(summary);
    return exitCode;
  } catch (error) {
    display.stop();
    process.stderr.write(`${job.name} failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await database.close();
  }
}
