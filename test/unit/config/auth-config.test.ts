import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('access-control and limits configuration', () => {
  test('AUTH_MODE defaults to off outside production and to apikey in production; off is refused there', () => {
    assert.equal(loadConfig({}).auth.mode, 'off');
    assert.equal(loadConfig({ NODE_ENV: 'test' }).auth.mode, 'off');
    assert.equal(loadConfig({ NODE_ENV: 'production' }).auth.mode, 'apikey');
    assert.match(problems({ NODE_ENV: 'production', AUTH_MODE: 'off' }), /AUTH_MODE: off is not allowed in production/);
  });

  test('a JWT mode needs exactly one verification key, and a secret is never echoed', () => {
    assert.match(problems({ AUTH_MODE: 'jwt' }), /needs exactly one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL \(got 0\)/);
    assert.match(problems({ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32), JWT_JWKS_URL: 'https://id.example/jwks' }), /got 2/);
    const short = problems({ JWT_SECRET: 'hunter2' });
    assert.match(short, /JWT_SECRET: must be at least 32/);
    assert.doesNotMatch(short, /hunter2/);
    const config = loadConfig({ AUTH_MODE: 'apikey+jwt', JWT_JWKS_URL: 'https://id.example/jwks', JWT_ROLE_CLAIM: 'realm.role' });
    assert.deepEqual(config.auth.jwt?.key, { kind: 'jwks', url: 'https://id.example/jwks' });
    assert.equal(config.auth.jwt?.roleClaim, 'realm.role');
    assert.equal(loadConfig({ AUTH_MODE: 'apikey', JWT_SECRET: 'x'.repeat(32) }).auth.jwt, undefined);
  });

  test('rate limiting is off by default outside production and on in production; CORS origins are a list', () => {
    assert.equal(loadConfig({}).limits.ratePoints, 0);
    assert.equal(loadConfig({ NODE_ENV: 'production' }).limits.ratePoints, 60_000);
    assert.deepEqual(loadConfig({ CORS_ORIGINS: ' https://a.example ,https://b.example,' }).corsOrigins, [
      'https://a.example',
      'https://b.example',
    ]);
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.match(problems({ MAX_QUERY_DEPTH: '1' }), /MAX_QUERY_DEPTH: must be at least 2/);
  });

  test('TRUST_PROXY: off by default; addresses, CIDRs and range names pass; true, hop counts and junk are refused', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false);
    assert.deepEqual(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, 127.0.0.1,::1, fd00::/8 ,loopback' }).trustProxy, [
      '10.0.0.0/8',
      '127.0.0.1',
      '::1',
      'fd00::/8',
      'loopback',
    ]);
    assert.match(problems({ TRUST_PROXY: 'true' }), /TRUST_PROXY: true would let any client choose its own address/);
    assert.match(problems({ TRUST_PROXY: '1' }), /TRUST_PROXY: a hop count cannot tell a proxy from a client/);
    for (const bad of ['10.0.0.0/33', '::1/129', 'proxy.example', '10.0.0.1/8/2', '300.1.1.1', ',']) {
      assert.match(problems({ TRUST_PROXY: bad }), /TRUST_PROXY: /, bad);
    }
  });

  test('JWT clock tolerance and the WebSocket credential re-check interval are validated', () => {
    const config = loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32), JWT_CLOCK_TOLERANCE_S: '0' });
    assert.equal(config.auth.jwt?.clockToleranceSeconds, 0);
    assert.equal(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32) }).auth.jwt?.clockToleranceSeconds, 30);
    assert.match(problems({ JWT_CLOCK_TOLERANCE_S: '301' }), /JWT_CLOCK_TOLERANCE_S: must be at most 300/);
    assert.equal(loadConfig({}).ws.credentialRecheckMs, 30_000);
    assert.match(problems({ WS_CREDENTIAL_RECHECK_MS: '10' }), /WS_CREDENTIAL_RECHECK_MS: must be at least 1000/);
  });
});
