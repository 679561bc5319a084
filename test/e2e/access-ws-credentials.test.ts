import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { SignJWT } from 'jose';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient } from '../helpers/graphql.js';
import { SignalRecorder } from '../helpers/signals.js';
import { stackName } from '../helpers/services.js';

/**
 * A subscription outlives the checks made when its connection and its operation started, so a
 * connection whose credential stops holding is closed by the server (4403 and the reason): a JWT at its
 * `exp`, an API key when its revocation is announced (at once) or, when no announcement arrives, at the
 * next periodic re-check (WS_CREDENTIAL_RECHECK_MS).
 */
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

interface Watched {
  client: Client;
  recorder: SignalRecorder;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** A `signals` subscription on its own connection, and how that connection ends. */
function watch(server: TestGateway, authorization: string, symbol: string): Watched {
  const client = wsClient(server.url, { connectionParams: { authorization } });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    client.on('closed', (event) => {
      const { code, reason } = event as { code: number; reason: string };
      resolve({ code, reason: String(reason), at: Date.now() });
    }),
  );
  return { client, recorder: new SignalRecorder(client, { symbols: [symbol] }), closed };
}

const within = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

describe(`running WebSocket subscriptions lose their credential (${stackName})`, () => {
  const watched: Watched[] = [];
  const open = (server: TestGateway, authorization: string, symbol: string) => {
    const w = watch(server, authorization, symbol);
    watched.push(w);
    return w;
  };
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({
      AUTH_MODE: 'apikey+jwt',
      JWT_SECRET: SECRET,
      JWT_CLOCK_TOLERANCE_S: '0',
      // Effectively never: what closes connections here is the token's expiry or the announcement.
      WS_CREDENTIAL_RECHECK_MS: '3600000',
      SYNTHETIC_TICK_MS: '250',
      SIGNALS_INTERVAL_MS: '0',
    });
  });
  after(async () => {
    await Promise.all(watched.map((w) => w.client.dispose()));
    await server.close();
  });

  test('a JWT expiring in 2 s: events flow until then, and the socket is closed with 4403 at its exp', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({ role: 'viewer' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('short-lived')
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(SECRET));
    const w = open(server, `Bearer ${token}`, 'AAPL');
    await w.recorder.until((r) => r.messages.length >= 1, 10_000, 'a signal before expiry');
    const closed = await within(w.closed, 5_000, 'closed after exp');
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /expired/);
    // Closed at exp (timers may fire a few ms early against the wall clock), and not much later.
    assert.ok(closed.at >= exp * 1000 - 50, `closed ${exp * 1000 - closed.at} ms before exp`);
    assert.ok(closed.at <= exp * 1000 + 1_000, `closed ${closed.at - exp * 1000} ms after exp`);
    const received = w.recorder.messages.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(w.recorder.messages.length, received, 'nothing arrives after the close');
  });

  test('an API key revoked while subscribed: its connection is closed within a second (4403); other keys carry on', async () => {
    const keys = apiKeysOf(server);
    const admin = await keys.create('admin');
    const doomed = await keys.create('viewer', 'doomed');
    const other = await keys.create('viewer', 'other');
    const a = open(server, `Bearer ${doomed.key}`, 'MSFT');
    const b = open(server, `Bearer ${other.key}`, 'MSFT');
    await Promise.all([
      a.recorder.until((r) => r.messages.length >= 1, 10_000, 'a signal'),
      b.recorder.until((r) => r.messages.length >= 1, 10_000, 'a signal'),
    ]);

    const revoked = await postQuery(
      server.url,
      `mutation { revokeApiKey(id: "${doomed.id}") { revokedAt } }`,
      undefined,
      bearer(admin.key),
    );
    assert.equal(revoked.errors, undefined);
    const revokedAt = Date.now();
    const closed = await within(a.closed, 1_000, 'closed after the revocation');
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /revoked/);
    assert.ok(closed.at - revokedAt < 1_000, `closed ${closed.at - revokedAt} ms after the revocation`);

    const before = b.recorder.messages.length;
    await b.recorder.until((r) => r.messages.length > before, 10_000, 'the other key still receives');
  });
});

describe(`a revocation nobody announces is found by the periodic re-check (${stackName})`, () => {
  let server: TestGateway;
  let watched: Watched | undefined;
  before(async () => {
    server = await startTestGateway({
      AUTH_MODE: 'apikey',
      WS_CREDENTIAL_RECHECK_MS: '1000',
      SYNTHETIC_TICK_MS: '250',
      SIGNALS_INTERVAL_MS: '0',
    });
  });
  after(async () => {
    await watched?.client.dispose();
    await server.close();
  });

  test('a key revoked straight in the database (as `npm run keys` does without REDIS_URL): closed within WS_CREDENTIAL_RECHECK_MS', async () => {
    // This service announces nothing: no event reaches the gateway, only its re-check can notice.
    const keys = apiKeysOf(server);
    const key = await keys.create('viewer');
    watched = watch(server, `Bearer ${key.key}`, 'NVDA');
    await watched.recorder.until((r) => r.messages.length >= 1, 10_000, 'a signal');
    await keys.keys.revoke(key.id, 'test');
    const revokedAt = Date.now();
    const closed = await within(watched.closed, 3_000, 'closed by the re-check');
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /revoked/);
    // One interval, plus the lookup and the close on a busy machine.
    assert.ok(closed.at - revokedAt <= 1_800, `closed ${closed.at - revokedAt} ms after the revocation`);
  });
});
