import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, migrationCount, openDatabase, pendingMigrations, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createPgliteDatabase } from '../../src/infra/db/pglite.js';
import { createTestDatabase, realPostgresUrl, stackName, tempDir, type TestDatabase } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });

describe(`database (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, logger);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });

  test('reports its engine and version', () => {
    assert.equal(database.engine, target.settings.kind);
    assert.match(database.serverVersion, /^\d+/);
  });

  test('a new database is unready until migrated, then ready', async () => {
    assert.equal((await pendingMigrations(database.db)).length, migrationCount);
    assert.equal((await database.health.check()).status, 'down');
    const { applied } = await migrateToLatest(database.db);
    assert.equal(applied.length, migrationCount);
    assert.deepEqual(await pendingMigrations(database.db), []);
    assert.equal((await database.health.check()).status, 'ok');
  });

  test('migrating again applies nothing', async () => {
    assert.deepEqual((await migrateToLatest(database.db)).applied, []);
  });

  test('both engines return the same JavaScript types', async () => {
    const { rows } = await sql<{ big: unknown; num: unknown; dbl: unknown; ts: unknown; json: unknown; bool: unknown }>`
      select 9007199254740991::int8 as big, 1.25::numeric as num, 2.5::float8 as dbl,
             '2021-04-21T20:00:00Z'::timestamptz as ts, '{"a":[1,2]}'::jsonb as json, true as bool
    `.execute(database.db);
    assert.deepEqual(rows[0], {
      big: 9007199254740991,
      num: '1.25',
      dbl: 2.5,
      ts: new Date('2021-04-21T20:00:00Z'),
      json: { a: [1, 2] },
      bool: true,
    });
  });

  test('writes and reads through Kysely, with generated ids and defaults', async () => {
    const inserted = await database.db
      .insertInto('audit_log')
      .values({ actor: 'test', action: 'probe', subject: 'database', detail: JSON.stringify({ ok: true }) })
      .returning(['id', 'time', 'detail'])
      .executeTakeFirstOrThrow();
    assert.equal(typeof inserted.id, 'number');
    assert.ok(inserted.time instanceof Date);
    assert.deepEqual(inserted.detail, { ok: true });
  });

  test('a transaction that fails leaves nothing behind, and the connection stays usable', async () => {
    const before = await countAudit(database);
    await assert.rejects(
      database.db.transaction().execute(async (trx) => {
        await trx.insertInto('audit_log').values({ actor: 't', action: 'a', subject: 's', detail: '{}' }).execute();
        await sql`select 1/0`.execute(trx);
      }),
      /division by zero/,
    );
    assert.equal(await countAudit(database), before);
  });

  test('concurrent queries and a concurrent transaction do not interleave', async () => {
    const before = await countAudit(database);
    await Promise.all([
      database.db.transaction().execute(async (trx) => {
        for (let i = 0; i < 5; i++)
          await trx
            .insertInto('audit_log')
            .values({ actor: 'tx', action: 'a', subject: String(i), detail: '{}' })
            .execute();
      }),
      ...Array.from({ length: 10 }, () => sql`select pg_sleep(0.001)`.execute(database.db)),
    ]);
    assert.equal(await countAudit(database), before + 5);
  });
});

describe('database: concurrent start-ups', () => {
  test(
    'two instances migrating one PostgreSQL database at once apply each migration once',
    { skip: !realPostgresUrl && 'needs DATABASE_URL (PGlite is one process by design)' },
    async () => {
      const target = await createTestDatabase();
      const [a, b] = await Promise.all([openDatabase(target.settings, logger), openDatabase(target.settings, logger)]);
      try {
        const results = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
        assert.equal(results[0].applied.length + results[1].applied.length, migrationCount);
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from kysely_migration`.execute(a.db);
        assert.equal(rows[0]?.n, migrationCount);
      } finally {
        await Promise.all([a.close(), b.close()]);
        await target.drop();
      }
    },
  );
});

describe('pglite engine', () => {
  test('data survives closing and reopening the directory', async () => {
    const dir = tempDir();
    try {
      const first = await createPgliteDatabase({ dataDir: `${dir.dir}/pglite` });
      await migrateToLatest(first.db);
      await first.db.insertInto('audit_log').values({ actor: 'a', action: 'persist', subject: 's', detail: '{}' }).execute();
      await first.close();
      const second = await createPgliteDatabase({ dataDir: `${dir.dir}/pglite` });
      const rows = await second.db.selectFrom('audit_log').select('action').execute();
      await second.close();
      assert.deepEqual(rows, [{ action: 'persist' }]);
    } finally {
      dir.remove();
    }
  });

  test('a data directory held by another live process is refused with a clear message', async () => {
    const dir = tempDir();
    const { writeFileSync } = await import('node:fs');
    try {
      writeFileSync(`${dir.dir}/pglite.lock`, String(process.ppid));
      await assert.rejects(createPgliteDatabase({ dataDir: `${dir.dir}/pglite` }), /in use by process \d+.*another DATA_DIR/);
      // A lock left by a process that no longer exists is stale and taken over.
      writeFileSync(`${dir.dir}/pglite.lock`, '999999999');
      const database = await createPgliteDatabase({ dataDir: `${dir.dir}/pglite` });
      await database.close();
    } finally {
      dir.remove();
    }
  });
});

async function countAudit(database: Database): Promise<number> {
  const row = await database.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
