import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { ApiKeysRepository, ApiKeysService, principalIdProblem } from '../../src/modules/access/index.js';
import { AuditLog } from '../../src/modules/audit/index.js';
import { ModelServingRepository } from '../../src/modules/models/index.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

/**
 * An admin change and its audit row commit together or not at all, over real SQL (PGlite, or PostgreSQL
 * with DATABASE_URL). The audit insert is made to fail for real: PostgreSQL's text type refuses NUL
 * (the fault an outside test found: a JWT whose sub held one revoked a key without an audit row), and a
 * CHECK constraint added here refuses one action at a time.
 */
describe(`admin mutations commit with their audit row (${stackName})`, () => {
  let testDb: TestDatabase;
  let database: Database;
  let keys: ApiKeysService;
  const announced: string[] = [];

  before(async () => {
    testDb = await createTestDatabase();
    database = await openDatabase(testDb.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    keys = new ApiKeysService({
      repository: new ApiKeysRepository(database.db),
      audit: new AuditLog(database.db),
      revocations: { announce: (id) => announced.push(id) },
    });
  });
  after(async () => {
    await database?.close();
    await testDb?.drop();
  });
  beforeEach(async () => {
    announced.length = 0;
    await sql`alter table audit_log drop constraint if exists test_refuses_action`.execute(database.db);
  });

  /** Makes every new audit insert of `action` fail, as a real constraint violation (`not valid`: rows already there are not checked). */
  const refuseAuditOf = (action: string) =>
    sql`alter table audit_log add constraint test_refuses_action check (action <> ${sql.lit(action)}) not valid`.execute(database.db);
  const auditRows = (subject: string) =>
    database.db.selectFrom('audit_log').select(['action', 'actor']).where('subject', '=', subject).execute();
  const keyRow = (id: string) => database.db.selectFrom('api_keys').select(['id', 'revoked_at']).where('id', '=', id).executeTakeFirst();

  test('revokeApiKey by an actor holding a NUL: the audit insert fails, so the key is not revoked and nothing is announced', async () => {
    const { record } = await keys.create({ name: 'victim', role: 'viewer', actor: 'test' });
    await assert.rejects(keys.revoke(record.id, 'jwt:admin\u0000'));
    assert.equal((await keyRow(record.id))?.revoked_at, null, 'the revocation rolled back');
    assert.deepEqual(
      (await auditRows(record.id)).map((r) => r.action),
      ['api_key.created'],
    );
    assert.deepEqual(announced, []);
    // The same revocation by a sound actor goes through, with its row.
    await keys.revoke(record.id, 'jwt:admin');
    assert.notEqual((await keyRow(record.id))?.revoked_at, null);
    assert.deepEqual((await auditRows(record.id)).map((r) => r.action).sort(), ['api_key.created', 'api_key.revoked']);
    assert.deepEqual(announced, [`key:${record.id}`]);
  });

  test('revokeApiKey whose audit row is refused by a constraint: the key stays live', async () => {
    const { record, key } = await keys.create({ name: 'stays', role: 'viewer', actor: 'test' });
    await refuseAuditOf('api_key.revoked');
    await assert.rejects(keys.revoke(record.id, 'key:admin'), /test_refuses_action/);
    assert.equal((await keyRow(record.id))?.revoked_at, null);
    assert.equal((await keys.check(key)).state, 'valid');
    assert.deepEqual(announced, []);
  });

  test('createApiKey whose audit row is refused: no key exists afterwards', async () => {
    await refuseAuditOf('api_key.created');
    const before = (await keys.list()).length;
    await assert.rejects(keys.create({ name: 'never', role: 'admin', actor: 'key:admin' }), /test_refuses_action/);
    assert.equal((await keys.list()).length, before);
    assert.equal(
      (await keys.list()).some((k) => k.name === 'never'),
      false,
    );
  });

  test('createApiKey with a NUL or another control character in its name is BAD_USER_INPUT and writes nothing', async () => {
    const before = (await keys.list()).length;
    for (const name of ['nul\u0000name', 'line\nbreak', '\u001b[2J']) {
      await assert.rejects(
        keys.create({ name, role: 'viewer', actor: 'key:admin' }),
        (error: { extensions?: { code?: string } }) => error.extensions?.code === 'BAD_USER_INPUT',
      );
    }
    assert.equal((await keys.list()).length, before);
  });

  test('activateModelVersion (and the other serving changes) whose audit row is refused: the serving record is unchanged', async () => {
    const serving = new ModelServingRepository(database.db);
    await serving.ensure('direction-1d', 'v1', 'test');
    await refuseAuditOf('model.activate');
    await assert.rejects(serving.activate({ strategy: 'direction-1d', version: 'v2', actor: 'key:admin' }), /test_refuses_action/);
    assert.equal((await serving.find('direction-1d'))?.activeVersion, 'v1');
    await sql`alter table audit_log drop constraint test_refuses_action`.execute(database.db);
    await refuseAuditOf('model.shadow');
    await assert.rejects(serving.setShadow({ strategy: 'direction-1d', version: 'v2', actor: 'key:admin' }), /test_refuses_action/);
    assert.equal((await serving.find('direction-1d'))?.shadowVersion, null);
  });

  test('every principal id the authenticator accepts can be written as an audit actor (property-based)', async () => {
    await fc.assert(
      // Arbitrary code points (astral ones too), minus what the rule refuses, so every run is a write.
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 125 }), async (raw) => {
        const actor = `jwt:${raw.replace(/[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]|\p{Cs}/gu, '')}`;
        assert.equal(principalIdProblem(actor), undefined);
        await new AuditLog(database.db).record({ actor, action: 'test.actor', subject: 'property' });
        const stored = await database.db
          .selectFrom('audit_log')
          .select('actor')
          .where('action', '=', 'test.actor')
          .orderBy('id', 'desc')
          .limit(1)
          .executeTakeFirstOrThrow();
        assert.equal(stored.actor, actor, 'stored as given');
      }),
      { numRuns: 200 },
    );
    // And the one an outside test used is refused before it gets there.
    assert.notEqual(principalIdProblem('jwt:admin\u0000'), undefined);
  });
});
