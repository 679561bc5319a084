import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { keysUnavailable, unauthenticated, Role, type Principal } from '../../../src/modules/access/index.js';
import { ErrorCode } from '../../../src/shared/errors.js';
import { CredentialWatcher, TRY_AGAIN_LATER, type CredentialHolder } from '../../../src/server/ws.credentials.js';

type State = 'valid' | 'revoked' | 'expired' | 'unchecked';

/** A connection without a socket: records how it was closed. */
class FakeConnection implements CredentialHolder {
  readonly clientAddress = '203.0.113.7';
  closed: { code: number; reason: string } | undefined;
  constructor(readonly connectionId: string) {}
  isOpen() {
    return this.closed === undefined;
  }
  close(code: number, reason: string) {
    this.closed ??= { code, reason };
  }
}

const key = (id: string): Principal => ({ id, name: id, role: Role.Viewer, via: 'apikey' });

/**
 * An authenticator over a table of credentials: `Bearer <name>` names an entry. Counts `stillValid`
 * calls, so the re-check's one-lookup-per-key can be seen.
 */
function fakeAuthenticator(table: Record<string, { principal: Principal; state: State } | 'unavailable' | 'throws'>) {
  const lookups: string[] = [];
  return {
    lookups,
    table,
    async authenticate(authorization: string | undefined) {
      if (authorization === undefined) return undefined;
      const entry = table[authorization.replace(/^Bearer /, '')];
      if (entry === undefined) throw unauthenticated('unknown API key');
      if (entry === 'unavailable') throw keysUnavailable('the key store is unreachable');
      if (entry === 'throws') throw new Error('boom');
      return entry.principal;
    },
    async stillValid(principal: Principal, authorization: string | undefined) {
      lookups.push(authorization ?? '');
      const entry = table[(authorization ?? '').replace(/^Bearer /, '')];
      if (typeof entry !== 'object') return 'revoked' as const;
      if (principal.expiresAt !== undefined && now() >= principal.expiresAt) return 'expired' as const;
      return entry.state;
    },
  };
}

let clock = 1_000_000;
const now = () => clock;
const silent = pino({ level: 'silent' });

function watcher(
  authenticator: ReturnType<typeof fakeAuthenticator>,
  extra: Partial<ConstructorParameters<typeof CredentialWatcher>[0]> = {},
) {
  return new CredentialWatcher<FakeConnection>({ authenticator, logger: silent, recheckMs: 60_000, expirySweepMs: 5, now, ...extra });
}

describe('CredentialWatcher.connect (connection_init)', () => {
  test('no credential: accepted as anonymous; a valid key: accepted as its principal', async () => {
    const w = watcher(fakeAuthenticator({ k1: { principal: key('k1'), state: 'valid' } }));
    const anonymous = new FakeConnection('a');
    assert.deepEqual(await w.connect(anonymous, undefined), { accepted: true, principal: undefined });
    const keyed = new FakeConnection('b');
    assert.deepEqual(await w.connect(keyed, { authorization: 'Bearer k1' }), { accepted: true, principal: key('k1') });
    assert.equal(w.principalOf(keyed)?.id, 'k1');
    assert.equal(anonymous.closed ?? keyed.closed, undefined);
    w.close();
  });

  test('a credential that is not a string (null included) closes 4400, never runs as anonymous', async () => {
    const w = watcher(fakeAuthenticator({}));
    for (const params of [{ authorization: null }, { authorization: 42 }, { Authorization: ['Bearer x'] }]) {
      const c = new FakeConnection('c');
      assert.deepEqual(await w.connect(c, params), { accepted: false });
      assert.equal(c.closed?.code, 4400);
      assert.match(c.closed.reason, /must be a string/);
    }
    assert.equal(w.size, 0);
    w.close();
  });

  test('a credential that does not verify closes 4403 with the reason; one that cannot be checked closes 1013; any other failure 4403', async () => {
    const w = watcher(fakeAuthenticator({ down: 'unavailable', bug: 'throws' }));
    const refused = new FakeConnection('r');
    assert.deepEqual(await w.connect(refused, { authorization: 'Bearer nope' }), { accepted: false });
    assert.deepEqual(refused.closed, { code: 4403, reason: 'Not authenticated: unknown API key' });
    const unavailable = new FakeConnection('u');
    assert.deepEqual(await w.connect(unavailable, { authorization: 'Bearer down' }), { accepted: false });
    assert.equal(unavailable.closed?.code, TRY_AGAIN_LATER);
    assert.match(unavailable.closed.reason, /^UNAVAILABLE: /);
    assert.ok(Buffer.byteLength(unavailable.closed.reason) <= 120);
    const bug = new FakeConnection('b');
    assert.deepEqual(await w.connect(bug, { authorization: 'Bearer bug' }), { accepted: false });
    assert.deepEqual(bug.closed, { code: 4403, reason: 'Not authenticated' });
    w.close();
  });

  test('a socket that closed while authenticating is not watched (no leak), though the verdict stands', async () => {
    const auth = fakeAuthenticator({ k1: { principal: { ...key('k1'), expiresAt: clock + 10 }, state: 'valid' } });
    const w = watcher(auth);
    const c = new FakeConnection('c');
    const connecting = w.connect(c, { authorization: 'Bearer k1' });
    c.close(1000, 'client went away');
    assert.equal((await connecting).accepted, true);
    assert.equal(w.size, 0);
    w.close();
  });
});

describe('CredentialWatcher while connections are open', () => {
  test('a JWT is closed 4403 at its expiry, not before; others stay open', async () => {
    const jwt: Principal = { id: 'sub', name: 'sub', role: Role.Viewer, via: 'jwt', expiresAt: clock + 1_000 };
    const w = watcher(fakeAuthenticator({ t: { principal: jwt, state: 'valid' }, k1: { principal: key('k1'), state: 'valid' } }));
    const [byJwt, byKey] = [new FakeConnection('j'), new FakeConnection('k')];
    await w.connect(byJwt, { authorization: 'Bearer t' });
    await w.connect(byKey, { authorization: 'Bearer k1' });
    await sleep(30);
    assert.equal(byJwt.closed, undefined, 'closed before its exp');
    clock += 1_000;
    await sleep(30);
    const closed = byJwt.closed as FakeConnection['closed']; // closed meanwhile, by the sweep
    assert.equal(closed?.code, 4403);
    assert.match(closed.reason, /token of this connection expired/);
    assert.equal(byKey.closed, undefined);
    w.close();
  });

  test('a revocation announcement closes every connection of that key at once, and only those', async () => {
    let announce: (id: string) => void = () => assert.fail('not listening');
    let stopped = false;
    const revocations = {
      listen: (listener: (id: string) => void) => {
        announce = listener;
        return () => (stopped = true);
      },
    };
    const w = watcher(fakeAuthenticator({ k1: { principal: key('k1'), state: 'valid' }, k2: { principal: key('k2'), state: 'valid' } }), {
      revocations,
    });
    const conns = ['k1', 'k1', 'k2'].map((k, i) => ({ k, c: new FakeConnection(String(i)) }));
    for (const { k, c } of conns) await w.connect(c, { authorization: `Bearer ${k}` });
    announce('k1');
    assert.deepEqual(
      conns.map(({ c }) => c.closed?.code),
      [4403, 4403, undefined],
    );
    assert.match(conns[0]!.c.closed!.reason, /API key of this connection was revoked/);
    w.close();
    assert.ok(stopped, 'close() stops listening');
  });

  test('a re-check looks each distinct key up once, closes on "revoked" and keeps connections on "unchecked"', async () => {
    const auth = fakeAuthenticator({
      shared: { principal: key('shared'), state: 'valid' },
      gone: { principal: key('gone'), state: 'valid' },
      dbdown: { principal: key('dbdown'), state: 'valid' },
    });
    const warnings: unknown[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
    const w = watcher(auth, { logger });
    const shared = Array.from({ length: 5 }, (_, i) => new FakeConnection(`s${i}`));
    for (const c of shared) await w.connect(c, { authorization: 'Bearer shared' });
    const gone = new FakeConnection('g');
    const dbdown = new FakeConnection('d');
    const anonymous = new FakeConnection('a');
    await w.connect(gone, { authorization: 'Bearer gone' });
    await w.connect(dbdown, { authorization: 'Bearer dbdown' });
    await w.connect(anonymous, {});
    (auth.table.gone as { state: State }).state = 'revoked';
    (auth.table.dbdown as { state: State }).state = 'unchecked';
    auth.lookups.length = 0;
    await w.recheck();
    assert.deepEqual(auth.lookups.sort(), ['Bearer dbdown', 'Bearer gone', 'Bearer shared']);
    assert.equal(gone.closed?.code, 4403);
    assert.equal(dbdown.closed, undefined, 'a key that could not be checked is not a revoked one');
    assert.ok(shared.every((c) => c.closed === undefined));
    assert.equal(anonymous.closed, undefined);
    assert.equal(warnings.length, 1);
    assert.equal((warnings[0] as { keys: number }).keys, 1);
    w.close();
  });

  test('the re-check runs on its timer; a failing one is logged and the next tick tries again', async () => {
    const auth = fakeAuthenticator({ k1: { principal: key('k1'), state: 'valid' } });
    let failures = 2;
    const flaky = {
      ...auth,
      stillValid: async (p: Principal, a: string | undefined) => (failures-- > 0 ? Promise.reject(new Error('db')) : auth.stillValid(p, a)),
    };
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
    const w = new CredentialWatcher<FakeConnection>({ authenticator: flaky, logger, recheckMs: 10, now });
    const c = new FakeConnection('c');
    await w.connect(c, { authorization: 'Bearer k1' });
    (auth.table.k1 as { state: State }).state = 'revoked';
    for (let i = 0; i < 100 && c.closed === undefined; i++) await sleep(10);
    assert.equal(c.closed?.code, 4403);
    assert.ok(warnings.filter((m) => /re-check failed/.test(m)).length >= 2, warnings.join('\n'));
    w.close();
  });

  test('checkOperation: the error to send per state; anonymous and forgotten connections pass', async () => {
    const auth = fakeAuthenticator({ k1: { principal: key('k1'), state: 'valid' } });
    const w = watcher(auth);
    const c = new FakeConnection('c');
    await w.connect(c, { authorization: 'Bearer k1' });
    assert.equal(await w.checkOperation(c), undefined);
    const expected: Record<Exclude<State, 'valid'>, [string, RegExp]> = {
      unchecked: [ErrorCode.UNAVAILABLE, /cannot be checked right now/],
      revoked: [ErrorCode.UNAUTHENTICATED, /was revoked/],
      expired: [ErrorCode.UNAUTHENTICATED, /expired/],
    };
    for (const [state, [code, message]] of Object.entries(expected)) {
      (auth.table.k1 as { state: State }).state = state as State;
      const error = await w.checkOperation(c);
      assert.equal(error?.extensions.code, code, state);
      assert.match(error.message, message);
    }
    assert.equal(c.closed, undefined, 'an operation refusal does not close the connection');
    const anonymous = new FakeConnection('a');
    await w.connect(anonymous, undefined);
    assert.equal(await w.checkOperation(anonymous), undefined);
    w.forget(c);
    assert.equal(w.size, 1);
    assert.equal(await w.checkOperation(c), undefined);
    w.close();
  });

  test('after forget or close, nothing is closed for its credential', async () => {
    let announce: (id: string) => void = () => undefined;
    const jwt: Principal = { id: 'sub', name: 'sub', role: Role.Viewer, via: 'jwt', expiresAt: clock + 50 };
    const w = watcher(fakeAuthenticator({ t: { principal: jwt, state: 'valid' }, k1: { principal: key('k1'), state: 'valid' } }), {
      revocations: { listen: (l) => ((announce = l), () => (announce = () => undefined)) },
    });
    const [forgotten, kept] = [new FakeConnection('f'), new FakeConnection('k')];
    await w.connect(forgotten, { authorization: 'Bearer t' });
    await w.connect(kept, { authorization: 'Bearer k1' });
    w.forget(forgotten);
    w.close();
    clock += 100;
    announce('k1');
    await sleep(30);
    assert.equal(forgotten.closed, undefined);
    assert.equal(kept.closed, undefined);
  });
});
