import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLFormattedError } from 'graphql';
import { createClient } from 'graphql-ws';
import { SignJWT, exportSPKI, generateKeyPair } from 'jose';
import WebSocket from 'ws';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

const PREDICTION = '{ prediction(symbol: "AAPL") { symbol signal confidence } }';
const CREATE_KEY = 'mutation { createApiKey(name: "from viewer", role: "admin") { key } }';
const codeOf = (errors: readonly GraphQLFormattedError[] | undefined) => errors?.[0]?.extensions?.code;

/** Runs one operation over a fresh graphql-ws connection; a refused connection resolves with its close code. */
async function overWs(url: string, query: string, authorization?: string) {
  const client = wsClient(url, authorization ? { connectionParams: { authorization } } : {});
  try {
    return await wsExecute<Record<string, unknown>>(client, query);
  } catch (error) {
    const close = error as { code?: number; reason?: string };
    return { closed: { code: close.code, reason: close.reason } } as const;
  } finally {
    await client.dispose();
  }
}

describe(`access control, AUTH_MODE=apikey (${stackName})`, () => {
  let server: TestGateway;
  let viewer: { key: string; id: string };
  let analyst: { key: string; id: string };
  let admin: { key: string; id: string };
  before(async () => {
    server = await startTestGateway({ AUTH_MODE: 'apikey' });
    const keys = apiKeysOf(server);
    viewer = await keys.create('viewer');
    analyst = await keys.create('analyst');
    admin = await keys.create('admin');
  });
  after(async () => server.close());

  test('no key: UNAUTHENTICATED for predictions, over HTTP and graphql-ws; health stays public', async () => {
    const http = await postQuery(server.url, PREDICTION);
    assert.equal(codeOf(http.errors), 'UNAUTHENTICATED');
    assert.equal(http.data, null);
    const ws = await overWs(server.url, PREDICTION);
    assert.ok(!('closed' in ws));
    assert.equal(codeOf(ws.errors), 'UNAUTHENTICATED');
    assert.equal((await postQuery<{ health: { status: string } }>(server.url, '{ health { status } }')).data?.health.status, 'ok');
  });

  test('an unknown or malformed key: HTTP 401 UNAUTHENTICATED; over graphql-ws the connection is closed with 4403', async () => {
    for (const authorization of ['Bearer sib_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'Bearer nonsense', 'Basic dXNlcjpwYXNz']) {
      const http = await postQuery(server.url, PREDICTION, undefined, { authorization });
      assert.equal(http.status, 401, authorization);
      assert.equal(codeOf(http.errors), 'UNAUTHENTICATED');
    }
    const ws = await overWs(server.url, PREDICTION, 'Bearer sib_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.ok('closed' in ws);
    assert.equal(ws.closed.code, 4403);
    assert.match(ws.closed.reason ?? '', /unknown or revoked API key/);
  });

  test('a viewer reads predictions but gets FORBIDDEN for admin operations and introspection, on both transports', async () => {
    const ok = await postQuery<{ prediction: { symbol: string } }>(server.url, PREDICTION, undefined, bearer(viewer.key));
    assert.equal(ok.errors, undefined);
    assert.equal(ok.data?.prediction.symbol, 'AAPL');
    for (const query of [CREATE_KEY, '{ apiKeys { id } }', '{ __schema { queryType { name } } }']) {
      const http = await postQuery(server.url, query, undefined, bearer(viewer.key));
      assert.equal(codeOf(http.errors), 'FORBIDDEN', query);
      const ws = await overWs(server.url, query, `Bearer ${viewer.key}`);
      assert.ok(!('closed' in ws));
      assert.equal(codeOf(ws.errors), 'FORBIDDEN', query);
    }
    const wsOk = await overWs(server.url, PREDICTION, `Bearer ${viewer.key}`);
    assert.ok(!('closed' in wsOk));
    assert.equal(wsOk.errors, undefined);
  });

  test('an analyst may introspect (Sandbox) but not manage keys', async () => {
    const schema = await postQuery<{ __schema: { queryType: { name: string } } }>(
      server.url,
      '{ __schema { queryType { name } } }',
      undefined,
      bearer(analyst.key),
    );
    assert.equal(schema.data?.__schema.queryType.name, 'Query');
    assert.equal(codeOf((await postQuery(server.url, CREATE_KEY, undefined, bearer(analyst.key))).errors), 'FORBIDDEN');
  });

  test('an admin creates a key that works at once, revokes it, and it is refused at once; both are audited', async () => {
    const created = await postQuery<{ createApiKey: { key: string; apiKey: { id: string; role: string } } }>(
      server.url,
      'mutation { createApiKey(name: "dashboard", role: "viewer") { key apiKey { id role prefix } } }',
      undefined,
      bearer(admin.key),
    );
    assert.equal(created.errors, undefined);
    const { key, apiKey } = created.data!.createApiKey;
    assert.match(key, /^sib_/);
    assert.equal(apiKey.role, 'viewer');
    assert.equal((await postQuery(server.url, PREDICTION, undefined, bearer(key))).errors, undefined);

    // A WebSocket connection opened before the revocation, kept open across operations.
    const open = createClient({
      url: `${server.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: false,
      connectionParams: { authorization: `Bearer ${key}` },
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      open.on('closed', (event) => resolve(event as { code: number; reason: string })),
    );
    try {
      assert.equal((await wsExecute(open, PREDICTION)).errors, undefined);
      const revoked = await postQuery(
        server.url,
        `mutation { revokeApiKey(id: "${apiKey.id}") { revokedAt } }`,
        undefined,
        bearer(admin.key),
      );
      assert.equal(revoked.errors, undefined);

      const http = await postQuery(server.url, PREDICTION, undefined, bearer(key));
      assert.equal(http.status, 401);
      assert.equal(codeOf(http.errors), 'UNAUTHENTICATED');
      // The open connection is closed by the server as soon as the revocation is announced.
      const onOpenSocket = await closed;
      assert.equal(onOpenSocket.code, 4403);
      assert.match(String(onOpenSocket.reason), /revoked/);
      const newSocket = await overWs(server.url, PREDICTION, `Bearer ${key}`);
      assert.ok('closed' in newSocket);
      assert.equal(newSocket.closed.code, 4403);
    } finally {
      await open.dispose();
    }
    const actions = (await apiKeysOf(server).audit.recent(10)).filter((e) => e.subject === apiKey.id).map((e) => [e.action, e.actor]);
    assert.deepEqual(actions.sort(), [
      ['api_key.created', `key:${admin.id}`],
      ['api_key.revoked', `key:${admin.id}`],
    ]);
  });

  test('listing keys shows their first characters, never a whole key', async () => {
    const listed = await postQuery<{ apiKeys: Array<{ prefix: string; revokedAt: string | null }> }>(
      server.url,
      '{ apiKeys { prefix revokedAt } }',
      undefined,
      bearer(admin.key),
    );
    assert.equal(listed.errors, undefined);
    assert.ok(listed.data!.apiKeys.length >= 3);
    assert.ok(listed.data!.apiKeys.some((k) => viewer.key.startsWith(k.prefix)));
    for (const key of [viewer.key, analyst.key, admin.key]) assert.doesNotMatch(JSON.stringify(listed.data), new RegExp(key.slice(10)));
  });
});

describe(`access control, AUTH_MODE=jwt (${stackName})`, () => {
  const secret = 'a-test-secret-that-is-long-enough-0123456789';
  let hs: TestGateway;
  let rs: TestGateway;
  let rsaPrivate: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    rsaPrivate = pair.privateKey;
    hs = await startTestGateway({
      AUTH_MODE: 'jwt',
      JWT_SECRET: secret,
      JWT_ISSUER: 'https://id.example',
      JWT_ROLE_CLAIM: 'https://sibyl/role',
    });
    rs = await startTestGateway({ AUTH_MODE: 'apikey+jwt', JWT_PUBLIC_KEY: await exportSPKI(pair.publicKey) });
  });
  after(async () => {
    await hs?.close();
    await rs?.close();
  });

  const hsToken = (claims: Record<string, unknown>, expires = '5m', key = secret) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('https://id.example')
      .setIssuedAt()
      .setExpirationTime(expires)
      .sign(new TextEncoder().encode(key));

  test('HS256: the role comes from the configured claim; viewer reads, admin operations are FORBIDDEN', async () => {
    const token = await hsToken({ 'https://sibyl/role': 'viewer' });
    assert.equal((await postQuery(hs.url, PREDICTION, undefined, bearer(token))).errors, undefined);
    assert.equal(codeOf((await postQuery(hs.url, CREATE_KEY, undefined, bearer(token))).errors), 'FORBIDDEN');
    const ws = await overWs(hs.url, CREATE_KEY, `Bearer ${token}`);
    assert.ok(!('closed' in ws));
    assert.equal(codeOf(ws.errors), 'FORBIDDEN');
  });

  test('HS256: expired, wrongly signed, role-less tokens and API keys are UNAUTHENTICATED', async () => {
    const bad = [
      await hsToken({ 'https://sibyl/role': 'viewer' }, '-1h'),
      await hsToken({ 'https://sibyl/role': 'viewer' }, '5m', 'another-secret-that-is-long-enough-0123456789'),
      await hsToken({ role: 'admin' }),
      'sib_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ];
    for (const token of bad) {
      const http = await postQuery(hs.url, PREDICTION, undefined, bearer(token));
      assert.equal(http.status, 401);
      assert.equal(codeOf(http.errors), 'UNAUTHENTICATED');
    }
    const ws = await overWs(hs.url, PREDICTION, `Bearer ${bad[0]}`);
    assert.ok('closed' in ws);
    assert.equal(ws.closed.code, 4403);
  });

  test('RS256 with a public key, and API keys beside it (apikey+jwt)', async () => {
    const token = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('ops')
      .setExpirationTime('5m')
      .sign(rsaPrivate);
    const created = await postQuery<{ createApiKey: { key: string } }>(
      rs.url,
      'mutation { createApiKey(name: "ci", role: "viewer") { key } }',
      undefined,
      bearer(token),
    );
    assert.equal(created.errors, undefined);
    assert.equal((await postQuery(rs.url, PREDICTION, undefined, bearer(created.data!.createApiKey.key))).errors, undefined);
    const audit = await apiKeysOf(rs).audit.recent(1);
    assert.equal(audit[0]?.actor, 'jwt:ops');
  });
});
