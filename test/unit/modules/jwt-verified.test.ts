import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { JwtRejected, createJwtVerifier } from '../../../src/modules/access/jwt.js';

const SECRET = 'unit-test-secret-0123456789-0123456789';
const sign = (claims: Record<string, unknown>, exp: number, secret = SECRET) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));

test('a remembered token is trusted only until it expires; refusals are never remembered', async () => {
  const verify = await createJwtVerifier({
    key: { kind: 'secret', secret: SECRET },
    roleClaim: 'role',
    clockToleranceSeconds: 0,
    maxTtlSeconds: 86_400,
    issuer: undefined,
    audience: undefined,
  });
  const now = Math.floor(Date.now() / 1000);
  const good = await sign({ role: 'viewer' }, now + 3_600);
  const first = await verify(good);
  assert.equal(first.role, 'viewer');
  assert.deepEqual(await verify(good), first);

  // Another token, not just another key: signed with a different secret, refused every time.
  const forged = await sign({ role: 'admin' }, now + 3_600, 'another-secret-0123456789-0123456789');
  for (let i = 0; i < 2; i++) await assert.rejects(verify(forged), JwtRejected);

  // Expiring within two seconds (read the clock again: signing above may have taken a while under
  // load): accepted now, refused once past exp, though it was remembered.
  const exp = Math.floor(Date.now() / 1000) + 2;
  const short = await sign({ role: 'analyst' }, exp);
  assert.equal((await verify(short)).role, 'analyst');
  await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
  await assert.rejects(verify(short), /invalid token \(ERR_JWT_EXPIRED\)/);
});
