import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery } from '../helpers/graphql.js';
import { runCliInProcess } from '../helpers/cli.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

/** `npm run keys` in this process (test/helpers/cli.ts); exit codes and streams as a command's. */
const keysCli = (args: string[], env: Record<string, string>) => runCliInProcess('keys', args, env);

describe(`npm run keys (${stackName})`, () => {
  let database: TestDatabase;
  let server: TestGateway | undefined;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    if (server) await server.close();
    else await database.drop();
  });

  test('create prints the key once on stdout, list shows only its prefix, revoke refuses it; the gateway agrees', async () => {
    const usage = await keysCli(['create', '--name', 'x'], database.env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--role viewer\|analyst\|admin/);

    const viewer = await keysCli(['create', '--name', 'web app', '--role', 'viewer'], database.env);
    assert.equal(viewer.code, 0, viewer.stderr);
    const viewerKey = viewer.stdout.trim();
    assert.match(viewerKey, /^sib_[A-Za-z0-9_-]{43}$/);
    const revoked = await keysCli(['create', '--name', 'leaked', '--role', 'analyst'], database.env);
    const revokedKey = revoked.stdout.trim();
    const revokedId = /id ([0-9a-f-]{36})/.exec(revoked.stderr)?.[1];
    assert.ok(revokedId, revoked.stderr);

    assert.equal((await keysCli(['revoke', revokedId], database.env)).code, 0);
    const list = await keysCli(['list'], database.env);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /viewer .*active .*web app/);
    assert.match(list.stdout, new RegExp(`${revokedId}.*revoked`));
    assert.doesNotMatch(list.stdout, new RegExp(viewerKey.slice(10)));

    server = await startTestGateway({ AUTH_MODE: 'apikey' }, { database });
    assert.equal((await postQuery(server.url, '{ strategies { name } }', undefined, bearer(viewerKey))).errors, undefined);
    const refused = await postQuery(server.url, '{ strategies { name } }', undefined, bearer(revokedKey));
    assert.equal(refused.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    // Key actions only: the gateway's first start also records each strategy's default model version.
    const audit = await server.gateway.database.db
      .selectFrom('audit_log')
      .select(['action', 'actor'])
      .where('action', 'like', 'api_key.%')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      audit.map((a) => a.action),
      ['api_key.created', 'api_key.created', 'api_key.revoked'],
    );
    assert.ok(audit.every((a) => a.actor.startsWith('cli:')));
  });
});
