import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import type { Database } from './database.js';
import { databaseHealth, probeServer } from './probe.js';
import type { Tables } from './tables.js';
import { tracedDialect } from './tracing.js';

/**
 * Embedded PostgreSQL (PGlite) with its data in `dataDir`, so a fresh machine needs no server and the
 * data survives restarts. Only one process may open a data directory: a pid lock file refuses a second
 * one with a clear message instead of letting two writers corrupt it.
 */
export async function createPgliteDatabase(options: { dataDir: string }): Promise<Database> {
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(path.dirname(dataDir), { recursive: true });
  const unlock = lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dataDir);
  } catch (error) {
    unlock();
    throw new Error(`cannot open the embedded database in ${dataDir}: ${(error as Error).message}`, { cause: error });
  }
  const db = new Kysely<Tables>({ dialect: tracedDialect(new PostgresDialect({ pool: new PglitePool(pglite) }), 'pglite') });
  const probe = await probeServer(db);
  const describe = () => `pglite (PostgreSQL ${probe.serverVersion}) at ${dataDir}`;
  return {
    db,
    engine: 'pglite',
    ...probe,
    health: databaseHealth(db, describe),
    async close() {
      try {
        await db.destroy();
      } finally {
        unlock();
      }
    },
  };
}

/**
 * Kysely's PostgresDialect over one PGlite instance. PGlite is a single connection, so checkouts are
 * serialized: a client holds the connection from connect() to release(), which keeps a transaction's
 * statements from interleaving with anyone else's.
 */
class PglitePool implements PostgresPool {
  #tail: Promise<void> = Promise.resolve();

  constructor(private readonly pglite: PGlite) {}

  async connect(): Promise<PostgresPoolClient> {
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    const pglite = this.pglite;
    let released = false;
    return {
      async query<R>(sqlText: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        const result = await pglite.query<R>(sqlText, parameters as unknown[]);
        return {
          command: result.command as PostgresQueryResult<R>['command'],
          rowCount: result.affectedRows ?? result.rows.length,
          rows: result.rows,
        };
      },
      release() {
        if (released) return;
        released = true;
        release();
      },
    } as PostgresPoolClient;
  }

  async end(): Promise<void> {
    await this.#tail;
    await this.pglite.close();
  }
}

function lockDataDir(dataDir: string): () => void {
  const lockFile = `${dataDir}.lock`;
  try {
    const holder = Number(readFileSync(lockFile, 'utf8'));
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
      throw new Error(
        `the embedded database in ${dataDir} is in use by process ${holder}; stop it, or give this instance another DATA_DIR`,
      );
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  writeFileSync(lockFile, String(process.pid));
  return () => rmSync(lockFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
