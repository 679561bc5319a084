import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from '../logger/logger.js';
import type { Database } from './database.js';
import { databaseHealth, probeServer } from './probe.js';
import type { Tables } from './tables.js';
import { tracedDialect } from './tracing.js';
import { redactUrl } from '../../config/index.js';

const INT8_OID = 20;

/**
 * PostgreSQL through a `pg` pool. int8 is parsed to a number so rows look the same as on PGlite
 * (our int8 columns are identities and counts, far below 2^53).
 */
export async function createPostgresDatabase(options: { url: string; poolMax: number; logger: Logger }): Promise<Database> {
  const { logger } = options;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its server emits on the pool; without a listener Node would crash the process.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle PostgreSQL connection failed'));
  // A client that is checked out but between queries (Kysely holds one across a transaction's
  // statements) emits the server's goodbye (57P01 on a fast shutdown) on itself, where the pool's
  // listener is not attached: give every client its own, or that event is an uncaught exception.
  // The query it was running, if any, still fails on its own.
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ err: error }, 'PostgreSQL connection failed'));
  });
  const db = new Kysely<Tables>({ dialect: tracedDialect(new PostgresDialect({ pool }), 'postgres') });
  let probe;
  try {
    probe = await probeServer(db);
  } catch (error) {
    await db.destroy();
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
  }
  const describe = () => `postgres ${probe.serverVersion}${probe.timescale ? ' + timescaledb' : ''}`;
  return {
    db,
    engine: 'postgres',
    ...probe,
    health: databaseHealth(db, describe),
    close: () => db.destroy(),
  };
}
