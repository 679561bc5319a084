import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiKeysService,
  apiKeysHealth,
  createAuthenticator,
  type ApiKeyRow,
  type ApiKeysRepository,
} from '../../../src/modules/access/index.js';
import type { AuditLog } from '../../../src/modules/audit/index.js';

/**
 * The decision logic around an unreachable database: which keys are still accepted, which are
 * UNAVAILABLE, and what a re-check calls a key it could not check. The lookups that fail here are a
 * stand-in (the claim is about the decisions, not SQL); the outage against a real PostgreSQL is
 * test/integration/api-keys-outage.test.ts.
 */
class FlakyKeys {
  down = false;
  /** Lookups never answer (a partitioned or frozen server), rather than failing at once. */
  hang = false;
  lookups = 0;
  readonly rows = new Map<string, ApiKeyRow>();

  add(key: string, id: string): void {
    this.rows.set(createHash('sha256').update(key).digest('hex'), {
      id,
      name: id,
      role: 'viewer',
      prefix: key.slice(0, 10),
      createdAt: new Date(),
      createdBy: 'test',
      revokedAt: null,
    });
  }

  revoke(key: string): void {
    this.rows.delete(createHash('sha256').update(key).digest('hex'));
  }

  async findActiveByHash(hash: string): Promise<ApiKeyRow | undefined> {
    this.lookups++;
    if (this.hang) return new Promise(() => undefined);
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    return this.rows.get(hash);
  }
}

const KEY_A = `sib_${'A'.repeat(43)}`;
const KEY_B = `sib_${'B'.repeat(43)}`;

function service(ttlMs: number, max = 100) {
  const repository = new FlakyKeys();
  repository.add(KEY_A, 'a');
  repository.add(KEY_B, 'b');
  const failures: unknown[] = [];
  let recoveries = 0;
  const keys = new ApiKeysService({
    repository: repository as unknown as ApiKeysRepository,
    audit: {} as AuditLog,
    remember: { ttlMs, max },
    onLookupFailed: (error) => failures.push(error),
    onLookupRecovered: () => recoveries++,
  });
  return { repository, keys, failures, recoveries: () => recoveries };
}

describe('API keys while the database cannot answer', () => {
  test('a key verified before the outage is accepted; one never seen is unchecked, not unknown', async () => {
    const { repository, keys, failures } = service(60_000);
    assert.equal((await keys.check(KEY_A)).state, 'valid');
    repository.down = true;
    const during = await keys.check(KEY_A);
    assert.equal(during.state, 'valid');
    assert.equal(during.state === 'valid' && during.principal.id, 'key:a');
    assert.deepEqual(await keys.check(KEY_B), { state: 'unchecked' });
    // A malformed key needs no database to be refused.
    assert.deepEqual(await keys.check('sib_short'), { state: 'unknown' });
    assert.equal(failures.length, 1, 'one report per outage');
    assert.equal(keys.memory.unreachable, true);
    assert.equal(keys.memory.remembered, 1);
  });

  test('while lookups fail, remembered keys wait on none: one trial lookup at a time, at most once a second', async () => {
    const { repository, keys } = service(60_000);
    await keys.check(KEY_A);
    repository.down = true;
    await keys.check(KEY_A); // fails: the outage is noticed
    const before = repository.lookups;
    for (let i = 0; i < 50; i++) assert.equal((await keys.check(KEY_A)).state, 'valid');
    assert.equal(repository.lookups, before, 'no lookup within the second after a failure');
    await sleep(1_050);
    for (let i = 0; i < 50; i++) assert.equal((await keys.check(KEY_A)).state, 'valid');
    assert.equal(repository.lookups, before + 1, 'one trial after it');
    // A key not remembered has no other way in: it asks every time.
    await keys.check(KEY_B);
    assert.equal(repository.lookups, before + 2);
  });

  test('a hanging database: a remembered key is answered at once, an unremembered one within the 2 s lookup bound', async () => {
    const { repository, keys } = service(60_000);
    await keys.check(KEY_A);
    repository.hang = true;
    let started = performance.now();
    assert.equal((await keys.check(KEY_A)).state, 'valid'); // the lookup that finds out waits its bound
    assert.ok(performance.now() - started < 2_500);
    started = performance.now();
    for (let i = 0; i < 20; i++) assert.equal((await keys.check(KEY_A)).state, 'valid');
    assert.ok(performance.now() - started < 100, `remembered answers took ${Math.round(performance.now() - started)} ms`);
    started = performance.now();
    assert.deepEqual(await keys.check(KEY_B), { state: 'unchecked' });
    const waited = performance.now() - started;
    assert.ok(waited >= 1_900 && waited < 2_500, `unremembered waited ${Math.round(waited)} ms`);
  });

  test('a trial lookup that answers ends the outage: memory emptied, keys checked in the database again', async () => {
    const { repository, keys, recoveries } = service(60_000);
    await keys.check(KEY_A);
    repository.down = true;
    await keys.check(KEY_A);
    repository.down = false;
    await sleep(1_050);
    assert.equal((await keys.check(KEY_A)).state, 'valid'); // served from memory, starts the trial
    await sleep(20);
    assert.equal(recoveries(), 1);
    assert.equal(keys.memory.unreachable, false);
    repository.revoke(KEY_A);
    assert.deepEqual(await keys.check(KEY_A), { state: 'unknown' });
  });

  test('memory ends API_KEY_REMEMBER_S after the last successful check', async () => {
    const { repository, keys } = service(300);
    await keys.check(KEY_A);
    repository.down = true;
    assert.equal((await keys.check(KEY_A)).state, 'valid');
    await sleep(350);
    assert.deepEqual(await keys.check(KEY_A), { state: 'unchecked' });
    assert.equal(keys.memory.remembered, 0);
  });

  test('TTL 0 remembers nothing: every key is unchecked during the outage', async () => {
    const { repository, keys } = service(0);
    await keys.check(KEY_A);
    repository.down = true;
    assert.deepEqual(await keys.check(KEY_A), { state: 'unchecked' });
  });

  test('the memory holds at most API_KEY_REMEMBER_MAX keys, least recently used dropped first', async () => {
    const { repository, keys } = service(60_000, 1);
    await keys.check(KEY_A);
    await keys.check(KEY_B);
    repository.down = true;
    assert.deepEqual(await keys.check(KEY_A), { state: 'unchecked' });
    assert.equal((await keys.check(KEY_B)).state, 'valid');
  });

  test('a revocation announced during the outage drops the key at once', async () => {
    const { repository, keys } = service(60_000);
    await keys.check(KEY_A);
    repository.down = true;
    keys.forget('key:a');
    assert.deepEqual(await keys.check(KEY_A), { state: 'unchecked' });
  });

  test('back from the outage: memory emptied, a key revoked meanwhile is unknown at its next use', async () => {
    const { repository, keys, recoveries } = service(60_000);
    await keys.check(KEY_A);
    await keys.check(KEY_B);
    repository.down = true;
    assert.equal(await keys.probe(1_000), false);
    repository.revoke(KEY_B); // where this instance could not hear of it
    repository.down = false;
    assert.equal(await keys.probe(1_000), true);
    assert.equal(recoveries(), 1);
    assert.equal(keys.memory.remembered, 0, 'nothing remembered from before the outage');
    assert.deepEqual(await keys.check(KEY_B), { state: 'unknown' });
    // Had the database gone again at once, B would not be recalled either.
    repository.down = true;
    assert.deepEqual(await keys.check(KEY_B), { state: 'unchecked' });
  });

  test('the authenticator: unchecked is UNAVAILABLE (503) on connect, and "unchecked", not "revoked", on a re-check', async () => {
    const { repository, keys } = service(60_000);
    const authenticator = await createAuthenticator({ mode: 'apikey', jwt: undefined, keyMemory: { ttlMs: 60_000, max: 100 } }, keys);
    const a = (await authenticator.authenticate(`Bearer ${KEY_A}`))!;
    const b = (await authenticator.authenticate(`Bearer ${KEY_B}`))!;
    repository.down = true;
    assert.equal(await authenticator.stillValid(a, `Bearer ${KEY_A}`), 'valid');
    keys.forget('key:b'); // say B was only just verified elsewhere; here it is not remembered
    assert.equal(await authenticator.stillValid(b, `Bearer ${KEY_B}`), 'unchecked');
    await assert.rejects(
      authenticator.authenticate(`Bearer ${KEY_B}`),
      (error: { extensions?: { code?: string; http?: { status?: number } } }) => {
        assert.equal(error.extensions?.code, 'UNAVAILABLE');
        assert.equal(error.extensions?.http?.status, 503);
        return true;
      },
    );
    repository.down = false;
    repository.revoke(KEY_B);
    assert.equal(await authenticator.stillValid(b, `Bearer ${KEY_B}`), 'revoked');
    await assert.rejects(authenticator.authenticate(`Bearer ${KEY_B}`), {
      extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
    } as never);
  });
});

describe('the api-keys readiness component', () => {
  test('ok while lookups answer; degraded while keys are remembered; down with none (API keys only), degraded with JWTs beside', async () => {
    const { repository, keys } = service(60_000);
    const onlyKeys = apiKeysHealth(keys, false);
    const withJwt = apiKeysHealth(keys, true);
    assert.equal((await onlyKeys.check()).status, 'ok');
    await keys.check(KEY_A);
    repository.down = true;
    const remembered = await onlyKeys.check();
    assert.equal(remembered.status, 'degraded');
    assert.match(remembered.detail ?? '', /1 API key\(s\) verified in the last 60 s still accepted/);
    keys.forget('key:a');
    assert.equal((await onlyKeys.check()).status, 'down');
    assert.equal((await withJwt.check()).status, 'degraded');
    repository.down = false;
    assert.equal((await onlyKeys.check()).status, 'ok');
  });

  test('a lookup that hangs counts as unreachable within the timeout, not as a failed probe of its own', async () => {
    const keys = new ApiKeysService({
      repository: { findActiveByHash: () => new Promise(() => undefined) } as unknown as ApiKeysRepository,
      audit: {} as AuditLog,
      remember: { ttlMs: 60_000, max: 10 },
    });
    const started = Date.now();
    const result = await apiKeysHealth(keys, false, 100).check();
    assert.equal(result.status, 'down');
    assert.ok(Date.now() - started < 1_000);
  });
});
