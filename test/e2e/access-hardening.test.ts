import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLFormattedError } from 'graphql';
import { SignJWT, type JWTPayload } from 'jose';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/**
 * What an outside test got through, refused end to end: a JWT whose `sub` holds a NUL revoking a key
 * (without an audit row), JWTs without `exp` or with one a century away, a NUL in `createApiKey`'s name
 * answered as an internal error, and a `connectionParams.authorization` that is not a string running as
 * anonymous.
 */
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const PREDICTION = '{ prediction(symbol: "AAPL") { symbol } }';
const codeOf = (errors: readonly GraphQLFormattedError[] | undefined) => errors?.[0]?.extensions?.code;
const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
const inMinutes = (m: number) => Math.floor(Date.now() / 1000) + m * 60;

/** One operation over a fresh connection; a refused connection resolves with its close code and reason. */
async function overWs(url: string, query: string, connectionParams: Record<string, unknown>) {
  const client = wsClient(url, { connectionParams });
  try {
    return await wsExecute<Record<string, unknown>>(client, query);
  } catch (error) {
    const close = error as { code?: number; reason?: string };
    return { closed: { code: close.code, reason: close.reason } } as const;
  } finally {
    await client.dispose();
  }
}

describe(`credentials an outside test got through are refused (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({ AUTH_MODE: 'apikey+jwt', JWT_SECRET: SECRET, JWT_MAX_TTL_S: '3600' });
  });
  after(async () => server?.close());

  test('revokeApiKey by a JWT whose sub holds a NUL: UNAUTHENTICATED (401), the key stays live, nothing audited', async () => {
    const keys = apiKeysOf(server);
    const victim = await keys.create('viewer', 'victim');
    const token = await sign({ sub: 'admin\u0000', role: 'admin', exp: inMinutes(5) });
    const response = await postQuery(server.url, `mutation { revokeApiKey(id: "${victim.id}") { revokedAt } }`, undefined, bearer(token));
    assert.equal(response.status, 401);
    assert.equal(codeOf(response.errors), 'UNAUTHENTICATED');
    assert.equal((await postQuery(server.url, PREDICTION, undefined, bearer(victim.key))).errors, undefined, 'the key still works');
    const rows = (await keys.audit.recent(50)).filter((row) => row.subject === victim.id).map((row) => row.action);
    assert.deepEqual(rows, ['api_key.created']);
  });

  test('JWTs without exp, or living longer than JWT_MAX_TTL_S, are UNAUTHENTICATED over HTTP and closed 4403 over graphql-ws', async () => {
    for (const claims of [
      { sub: 'ops', role: 'admin' },
      { sub: 'ops', role: 'admin', exp: 1e20 },
      { sub: 'ops', role: 'admin', iat: inMinutes(0), exp: inMinutes(120) },
    ]) {
      const token = await sign(claims);
      const http = await postQuery(server.url, PREDICTION, undefined, bearer(token));
      assert.equal(http.status, 401, JSON.stringify(claims));
      assert.equal(codeOf(http.errors), 'UNAUTHENTICATED');
      const ws = await overWs(server.url, PREDICTION, { authorization: `Bearer ${token}` });
      assert.ok('closed' in ws);
      assert.equal(ws.closed.code, 4403);
    }
    const fine = await sign({ sub: 'ops', role: 'viewer', iat: inMinutes(0), exp: inMinutes(30) });
    assert.equal((await postQuery(server.url, PREDICTION, undefined, bearer(fine))).errors, undefined);
  });

  test('createApiKey with a NUL or a control character in its name: BAD_USER_INPUT, not INTERNAL_SERVER_ERROR', async () => {
    const admin = await apiKeysOf(server).create('admin');
    for (const name of ['nul\u0000', 'esc\u001b[31m', 'bell\u0007']) {
      const response = await postQuery(
        server.url,
        'mutation($name: String!) { createApiKey(name: $name, role: "viewer") { key } }',
        { name },
        bearer(admin.key),
      );
      assert.equal(codeOf(response.errors), 'BAD_USER_INPUT', JSON.stringify(name));
      assert.equal(response.data, null);
    }
  });

  test('a connectionParams.authorization that is not a string closes the socket with 4400, never runs as anonymous', async () => {
    for (const authorization of [42, true, null, {}, ['Bearer x'], { token: 'Bearer x' }]) {
      const ws = await overWs(server.url, '{ health { status } }', { authorization });
      assert.ok('closed' in ws, `${JSON.stringify(authorization)} ran as anonymous`);
      assert.equal(ws.closed.code, 4400, JSON.stringify(authorization));
      assert.match(ws.closed.reason ?? '', /must be a string/);
    }
    const capitalised = await overWs(server.url, '{ health { status } }', { Authorization: 7 });
    assert.ok('closed' in capitalised);
    assert.equal(capitalised.closed.code, 4400);
    // No credential at all is still anonymous, and a string one still works.
    const anonymous = await overWs(server.url, '{ health { status } }', {});
    assert.ok(!('closed' in anonymous));
    const viewer = await apiKeysOf(server).create('viewer');
    const keyed = await overWs(server.url, PREDICTION, { authorization: `Bearer ${viewer.key}` });
    assert.ok(!('closed' in keyed));
    assert.equal(keyed.errors, undefined);
  });

  test('over HTTP a malformed Authorization header is UNAUTHENTICATED (401), not anonymous', async () => {
    for (const authorization of ['Bearer', 'Bearer a b', 'Token sib_x', 'Bearer\tx y']) {
      const response = await postQuery(server.url, '{ health { status } }', undefined, { authorization });
      assert.equal(response.status, 401, authorization);
      assert.equal(codeOf(response.errors), 'UNAUTHENTICATED');
    }
  });
});
