import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/**
 * Anonymous callers are rate-limited per client address. Behind a load balancer every connection comes
 * from the balancer, so the address must come from X-Forwarded-For, but only when the connection really
 * comes from a proxy named in TRUST_PROXY: otherwise any client could pick its own address, and with it
 * a fresh budget. Here the test client (127.0.0.1) plays the proxy, and callers send no key (with
 * AUTH_MODE=off everyone is the same development admin, one budget).
 */
const CHEAP = '{ health { status } }'; // cost 2, and public: anonymous callers may run it
const BUDGET = '6'; // three operations per window

async function spend(server: TestGateway, forwardedFor: string) {
  const response = await postQuery(server.url, CHEAP, undefined, { 'x-forwarded-for': forwardedFor });
  return response.errors?.[0]?.extensions?.code ?? 'ok';
}

describe(`client address behind a proxy (${stackName})`, () => {
  let trusting: TestGateway;
  let plain: TestGateway;
  before(async () => {
    trusting = await startTestGateway({
      AUTH_MODE: 'apikey',
      RATE_LIMIT_POINTS: BUDGET,
      RATE_LIMIT_WINDOW_S: '600',
      TRUST_PROXY: '127.0.0.1/32, ::1',
    });
    plain = await startTestGateway({ AUTH_MODE: 'apikey', RATE_LIMIT_POINTS: BUDGET, RATE_LIMIT_WINDOW_S: '600' });
  });
  after(async () => {
    await trusting?.close();
    await plain?.close();
  });

  test('TRUST_PROXY names the proxy: each forwarded client has its own budget', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await spend(trusting, '203.0.113.7'), 'ok');
    assert.equal(await spend(trusting, '203.0.113.7'), 'RATE_LIMITED');
    // Another client behind the same proxy is not charged for the first one's requests.
    assert.equal(await spend(trusting, '203.0.113.8'), 'ok');
    // The client is the address the trusted proxy saw, not whatever the client wrote before it.
    assert.equal(await spend(trusting, '198.51.100.1, 203.0.113.7'), 'RATE_LIMITED');
  });

  test('TRUST_PROXY unset (the default): X-Forwarded-For is ignored, every request is charged to the connection', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await spend(plain, `203.0.113.${i + 1}`), 'ok');
    assert.equal(await spend(plain, '203.0.113.99'), 'RATE_LIMITED');
  });
});

describe(`a proxy list that does not include the caller (${stackName})`, () => {
  test('a connection from an address outside TRUST_PROXY is its own client, whatever X-Forwarded-For says', async () => {
    const server = await startTestGateway({
      AUTH_MODE: 'apikey',
      RATE_LIMIT_POINTS: BUDGET,
      RATE_LIMIT_WINDOW_S: '600',
      TRUST_PROXY: '10.0.0.0/8',
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal(await spend(server, `203.0.113.${i + 1}`), 'ok');
      assert.equal(await spend(server, '203.0.113.99'), 'RATE_LIMITED');
    } finally {
      await server.close();
    }
  });
});
