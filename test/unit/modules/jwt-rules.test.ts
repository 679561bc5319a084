import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import type { Config } from '../../../src/config/index.js';
import { createAuthenticator, type ApiKeysService } from '../../../src/modules/access/index.js';
import { JwtRejected, claimAt, createJwtVerifier } from '../../../src/modules/access/jwt.js';

/** One rule per test: what JWT_MAX_TTL_S, a required `exp`, JWT_ROLE_CLAIM and `sub` checks refuse. */
const SECRET = 'unit-test-secret-0123456789-0123456789';
const MAX_TTL_S = 3_600;
type JwtSettings = NonNullable<Config['auth']['jwt']>;
const settings = (overrides: Partial<JwtSettings> = {}): JwtSettings => ({
  key: { kind: 'secret', secret: SECRET },
  issuer: undefined,
  audience: undefined,
  roleClaim: 'role',
  clockToleranceSeconds: 30,
  maxTtlSeconds: MAX_TTL_S,
  ...overrides,
});
const now = () => Math.floor(Date.now() / 1000);

/** Signs exactly `claims` (no defaults: a test that omits `exp` gets a token without one). */
const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

async function refusal(claims: JWTPayload, overrides: Partial<JwtSettings> = {}): Promise<string> {
  const verify = await createJwtVerifier(settings(overrides));
  try {
    await verify(await sign(claims));
  } catch (error) {
    assert.ok(error instanceof JwtRejected, `not a JwtRejected: ${String(error)}`);
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(claims)}`);
}

describe('JWT lifetime', () => {
  test('a token without exp is refused, and saying why', async () => {
    assert.match(await refusal({ sub: 'alice', role: 'viewer', iat: now() }), /no "exp" claim/);
  });

  test('exp far in the future (1e20, a year) is refused; one within JWT_MAX_TTL_S is accepted', async () => {
    assert.match(await refusal({ sub: 'alice', role: 'viewer', exp: 1e20 }), /JWT_MAX_TTL_S/);
    assert.match(await refusal({ sub: 'alice', role: 'viewer', exp: now() + 365 * 86_400 }), /JWT_MAX_TTL_S/);
    const verify = await createJwtVerifier(settings());
    const principal = await verify(await sign({ sub: 'alice', role: 'viewer', iat: now(), exp: now() + MAX_TTL_S - 60 }));
    assert.equal(principal.id, 'jwt:alice');
    assert.ok(principal.expiresAt !== undefined && principal.expiresAt <= (now() + MAX_TTL_S + 30) * 1000);
  });

  test('a lifetime (exp - iat) beyond the maximum is refused even when little of it is left', async () => {
    // Issued 10 h ago for 11 h: 1 h left, but it was granted 11 h.
    const iat = now() - 10 * 3_600;
    assert.match(await refusal({ sub: 'alice', role: 'viewer', iat, exp: iat + 11 * 3_600 }), /exp - iat/);
  });

  test('an iat set in the future does not get a far exp through', async () => {
    const exp = now() + 10 * MAX_TTL_S;
    assert.match(await refusal({ sub: 'alice', role: 'viewer', iat: exp - 60, exp }), /JWT_MAX_TTL_S/);
  });

  test('the bound follows the setting', async () => {
    const exp = now() + 2 * MAX_TTL_S;
    await refusal({ sub: 'a', role: 'viewer', exp });
    const verify = await createJwtVerifier(settings({ maxTtlSeconds: 3 * MAX_TTL_S }));
    assert.equal((await verify(await sign({ sub: 'a', role: 'viewer', exp }))).role, 'viewer');
  });
});

describe('JWT role claim: a path, never a literal dotted name', () => {
  const exp = () => now() + 600;

  test('a top-level "realm_access.role" claim does not override the nested role', async () => {
    const verify = await createJwtVerifier(settings({ roleClaim: 'realm_access.role' }));
    const principal = await verify(await sign({ sub: 'bob', exp: exp(), realm_access: { role: 'viewer' }, 'realm_access.role': 'admin' }));
    assert.equal(principal.role, 'viewer');
    // Only the literal claim: no role at all.
    assert.match(
      await refusal({ sub: 'bob', exp: exp(), 'realm_access.role': 'admin' }, { roleClaim: 'realm_access.role' }),
      /no valid role/,
    );
  });

  test('a URL-named claim is one name (dots and all); only own properties are followed', async () => {
    const verify = await createJwtVerifier(settings({ roleClaim: 'https://sibyl.example/role' }));
    assert.equal((await verify(await sign({ sub: 'c', exp: exp(), 'https://sibyl.example/role': 'analyst' }))).role, 'analyst');
    assert.equal(claimAt({ a: { b: 'x' } }, 'a.b'), 'x');
    assert.equal(claimAt({ a: 'viewer' }, 'a.length'), undefined);
    assert.equal(claimAt({}, 'constructor.name'), undefined);
    assert.equal(claimAt({}, '__proto__'), undefined);
  });
});

describe('JWT subject and name', () => {
  const exp = () => now() + 600;

  test('a sub with a NUL, a newline, an escape, a bidi override or over 251 characters is refused', async () => {
    for (const sub of ['admin\u0000', 'a\nb', '\u001b[31mred', 'user\u202Egnp.exe', 'x'.repeat(252)]) {
      assert.match(await refusal({ sub, role: 'admin', exp: exp() }), /subject \(sub\) is not acceptable/, JSON.stringify(sub));
    }
    const verify = await createJwtVerifier(settings());
    assert.equal((await verify(await sign({ sub: 'x'.repeat(251), role: 'admin', exp: exp() }))).id.length, 255);
  });

  test('a name with control characters is replaced by the sub (display only)', async () => {
    const verify = await createJwtVerifier(settings());
    assert.equal((await verify(await sign({ sub: 'dana', name: 'Dana\r\nINFO forged', role: 'viewer', exp: exp() }))).name, 'dana');
    assert.equal((await verify(await sign({ sub: 'erin', name: 'Erin Ö', role: 'viewer', exp: exp() }))).name, 'Erin Ö');
  });

  test('through the authenticator each refusal is UNAUTHENTICATED (HTTP 401)', async () => {
    const authenticator = await createAuthenticator(
      { mode: 'jwt', jwt: settings(), keyMemory: { ttlMs: 0, max: 1 } },
      {} as ApiKeysService,
    );
    for (const claims of [
      { sub: 'a', role: 'viewer' },
      { sub: 'a', role: 'viewer', exp: 1e20 },
      { sub: 'a\u0000', role: 'admin', exp: exp() },
    ]) {
      await assert.rejects(
        authenticator.authenticate(`Bearer ${await sign(claims)}`),
        (error: { extensions?: { code?: string; http?: { status?: number } } }) => {
          assert.equal(error.extensions?.code, 'UNAUTHENTICATED');
          assert.equal(error.extensions?.http?.status, 401);
          return true;
        },
      );
    }
  });
});
