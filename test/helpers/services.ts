import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * The services a test runs against. With DATABASE_URL / REDIS_URL set (as `.ci/run` does for its
 * second pass), tests use those real servers; unset, the embedded engines. Each test gets a fresh
 * database and key prefix so runs and files never see each other's data.
 */
export const realPostgresUrl: string | undefined = process.env.DATABASE_URL || undefined;
export const realRedisUrl: string | undefined = process.env.REDIS_URL || undefined;

/**
 * SIBYL_TEST_TIMESCALE=1 (the third leg of `.ci/run`): every test database on the real PostgreSQL gets
 * `create extension timescaledb` before anything else, so the migrations take their TimescaleDB branches
 * and the suite runs on hypertables. Unset, no test database has the extension, whatever the server
 * offers: the plain PostgreSQL leg stays plain. It needs DATABASE_URL (PGlite has no TimescaleDB), and
 * the server must preload the library (`shared_preload_libraries = 'timescaledb'`), or the extension
 * cannot be created and the first test database says so.
 */
export const timescaleTests: boolean = timescaleSwitch(process.env.SIBYL_TEST_TIMESCALE);

function timescaleSwitch(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0') return false;
  if (value !== '1') throw new Error(`SIBYL_TEST_TIMESCALE must be 1 (on) or 0/unset (off); got "${value}"`);
  if (!realPostgresUrl) throw new Error('SIBYL_TEST_TIMESCALE=1 needs DATABASE_URL: TimescaleDB runs on a real PostgreSQL, not PGlite');
  return true;
}

export const stackName = `${realPostgresUrl ? (timescaleTests ? 'timescaledb' : 'postgres') : 'pglite'}+${realRedisUrl ? 'redis' : 'memory'}`;

let counter = 0;
const uniqueName = (kind: string) => `sibyl_t_${kind}_${process.pid}_${Date.now().toString(36)}_${counter++}`;

export function tempDir(prefix = 'sibyl-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestDatabase {
  /** Environment for a gateway process or loadConfig: DATABASE_URL (real PG) or DATA_DIR (PGlite). */
  env: Record<string, string>;
  settings: { kind: 'postgres'; url: string; poolMax: number } | { kind: 'pglite'; dataDir: string };
  drop(): Promise<void>;
}

let pgliteTemplate: Promise<string> | undefined;

/** PGlite's package.json (its `exports` hide it from require.resolve, so it is found from the entry). */
function pglitePackageJson(): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, 'package.json');
}

/**
 * A PGlite data directory straight after initdb, made once per PGlite version and shared by every test
 * process through the temp directory. initdb is most of what opening a new PGlite costs (about 2.5 s
 * against 0.2 s to copy and open a copy), and the suite opens a few hundred. It is made in a private
 * directory and renamed into place, so a process never copies a half-made one; when two race, the
 * loser's copy is dropped.
 */
function pgliteInitdbTemplate(): Promise<string> {
  pgliteTemplate ??= (async () => {
    const manifest = JSON.parse(readFileSync(pglitePackageJson(), 'utf8')) as { version: string };
    const template = path.join(tmpdir(), `sibyl-pglite-initdb-${manifest.version}`);
    if (existsSync(template)) return template;
    const making = mkdtempSync(`${template}.making-`);
    const pglite = await PGlite.create(path.join(making, 'pglite'));
    await pglite.close();
    try {
      renameSync(path.join(making, 'pglite'), template);
    } catch (error) {
      if (!existsSync(template)) throw error;
    } finally {
      rmSync(making, { recursive: true, force: true });
    }
    return template;
  })();
  return pgliteTemplate;
}

/** A new, empty database on the configured PostgreSQL, or a new PGlite data directory. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const data = tempDir();
  if (!realPostgresUrl) {
    cpSync(await pgliteInitdbTemplate(), path.join(data.dir, 'pglite'), { recursive: true });
    return {
      env: { DATA_DIR: data.dir },
      settings: { kind: 'pglite', dataDir: path.join(data.dir, 'pglite') },
      drop: async () => data.remove(),
    };
  }
  const name = uniqueName('db');
  await runStatement(realPostgresUrl, `create database ${name}`);
  const url = new URL(realPostgresUrl);
  url.pathname = `/${name}`;
  if (timescaleTests) {
    try {
      await createTimescaleExtension(url.toString());
    } catch (error) {
      await runStatement(realPostgresUrl, `drop database if exists ${name} with (force)`);
      throw error;
    }
  }
  return {
    env: { DATABASE_URL: url.toString(), DATA_DIR: data.dir },
    settings: { kind: 'postgres', url: url.toString(), poolMax: 5 },
    async drop() {
      await runStatement(realPostgresUrl, `drop database if exists ${name} with (force)`);
      data.remove();
    },
  };
}

/**
 * `create extension timescaledb` in the database at `url`, with a message that says what to fix when
 * the server cannot (the library not installed, or not preloaded).
 */
export async function createTimescaleExtension(url: string): Promise<void> {
  try {
    await runStatement(url, 'create extension if not exists timescaledb');
  } catch (error) {
    throw new Error(
      `SIBYL_TEST_TIMESCALE=1 but this PostgreSQL cannot create the timescaledb extension (is it installed, and in ` +
        `shared_preload_libraries?): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Runs one statement on its own connection (create/drop database cannot run inside a pool's transaction). */
export async function runStatement(connectionString: string, sqlText: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

/** Environment for Redis (a unique key prefix per call), or nothing when Redis is not configured. */
export function testRedisEnv(): Record<string, string> {
  const prefix = `${uniqueName('k')}:`;
  return realRedisUrl ? { REDIS_URL: realRedisUrl, REDIS_KEY_PREFIX: prefix } : { REDIS_KEY_PREFIX: prefix };
}
