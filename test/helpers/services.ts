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

export const stackName = `${realPostgresUrl ? 'postgres' : 'pglite'}+${realRedisUrl ? 'redis' : 'memory'}`;

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
  return {
    env: { DATABASE_URL: url.toString(), DATA_DIR: data.dir },
    settings: { kind: 'postgres', url: url.toString(), poolMax: 5 },
    async drop() {
      await runStatement(realPostgresUrl, `drop database if exists ${name} with (force)`);
      data.remove();
    },
  };
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
