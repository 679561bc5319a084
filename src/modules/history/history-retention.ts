import { sql } from 'kysely';
import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';

/**
 * Applies HISTORY_RETENTION_DAYS at start-up: with TimescaleDB, a retention policy dropping history
 * chunks older than `days` (0 removes the policy: keep everything). Without TimescaleDB there is no
 * chunk to drop cheaply, so a non-zero setting is logged as ignored rather than turned into DELETEs.
 * Idempotent: the policy is replaced, so every start converges on the configured value.
 *
 * Tested on the suite's TimescaleDB leg (test/integration/history-queries.test.ts).
 */
export async function applyHistoryRetention(database: Pick<Database, 'db' | 'timescale'>, days: number, logger: Logger): Promise<void> {
  if (!database.timescale) {
    if (days > 0) logger.warn({ days }, 'HISTORY_RETENTION_DAYS needs TimescaleDB; ignored on this database (history is kept)');
    return;
  }
  await sql`select remove_retention_policy('prediction_history', if_exists => true)`.execute(database.db);
  if (days > 0) {
    await sql`select add_retention_policy('prediction_history', drop_after => make_interval(days => ${days}::int))`.execute(database.db);
    logger.info({ days }, 'history retention policy set');
  }
}
