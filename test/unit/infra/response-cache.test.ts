import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALL_BARS, HISTORY, barsOf, modelsOf, symbolsOfBars } from '../../../src/infra/response-cache/inputs.js';
import { createResponseCache } from '../../../src/infra/response-cache/response-cache.js';
import { AnswerStore } from '../../../src/infra/response-cache/store.js';
import { InputVersions } from '../../../src/infra/response-cache/versions.js';

describe('InputVersions', () => {
  test('an input changed after the position an execution started from refuses its answer; others do not', () => {
    const versions = new InputVersions();
    const started = versions.now();
    assert.ok(versions.unchangedSince([barsOf('AAPL'), HISTORY], started));
    versions.changed([barsOf('MSFT')]);
    assert.ok(versions.unchangedSince([barsOf('AAPL'), HISTORY], started), 'MSFT is not read');
    assert.equal(versions.unchangedSince([barsOf('MSFT')], started), false);
    assert.equal(versions.unchangedSince([ALL_BARS], started), false, 'bars:* reads every symbol');
    const later = versions.now();
    assert.ok(versions.unchangedSince([barsOf('MSFT'), ALL_BARS], later), 'an execution started after the change may store');
  });

  test('a whole-family change (bars:*) changes every input of the family, and only that family', () => {
    const versions = new InputVersions();
    const started = versions.now();
    versions.changed([ALL_BARS]);
    assert.equal(versions.unchangedSince([barsOf('AAPL')], started), false);
    assert.ok(versions.unchangedSince([modelsOf('direction-1d'), HISTORY], started));
    versions.changed([HISTORY]);
    assert.equal(versions.unchangedSince([HISTORY], started), false);
  });

  test('changedAll changes everything', () => {
    const versions = new InputVersions();
    const started = versions.now();
    versions.changedAll();
    assert.equal(versions.unchangedSince([modelsOf('x')], started), false);
    assert.equal(versions.unchangedSince([], started), false, 'even an answer that read nothing was computed before it');
  });

  test('while a write runs its inputs count as changing; after it they changed (also when it fails)', async () => {
    const versions = new InputVersions();
    let release!: () => void;
    const writing = versions.writing([HISTORY], () => new Promise<void>((resolve) => (release = resolve)));
    // An execution starting during the write: nothing it computes may be stored until the write is over.
    const during = versions.now();
    assert.equal(versions.unchangedSince([HISTORY], during), false);
    assert.ok(versions.unchangedSince([barsOf('AAPL')], during));
    release();
    await writing;
    assert.equal(versions.unchangedSince([HISTORY], during), false, 'it changed again at the end');
    assert.ok(versions.unchangedSince([HISTORY], versions.now()));

    const failing = versions.writing([barsOf('AAPL')], async () => {
      throw new Error('the upsert failed (it may have committed)');
    });
    const before = versions.now();
    await assert.rejects(failing, /upsert failed/);
    assert.equal(versions.unchangedSince([barsOf('AAPL')], before), false);
    assert.ok(versions.unchangedSince([barsOf('AAPL')], versions.now()), 'no write is counted as running any more');
  });

  test('a keyed write makes family:* readers wait too, but not other keys', async () => {
    const versions = new InputVersions();
    let release!: () => void;
    const writing = versions.writing([barsOf('AAPL')], () => new Promise<void>((resolve) => (release = resolve)));
    const now = versions.now();
    assert.equal(versions.unchangedSince([ALL_BARS], now), false);
    assert.ok(versions.unchangedSince([barsOf('MSFT')], now));
    release();
    await writing;
  });

  test('listeners hear each change with its origin, synchronously', () => {
    const versions = new InputVersions();
    const heard: string[] = [];
    const stop = versions.onChange((change, origin) => heard.push(`${origin}:${'all' in change ? 'all' : change.inputs.join(',')}`));
    versions.changed([barsOf('A'), barsOf('B')]);
    versions.changed([HISTORY], 'remote');
    versions.changedAll('remote');
    versions.changed([]);
    stop();
    versions.changed([HISTORY]);
    assert.deepEqual(heard, ['local:bars:A,bars:B', 'remote:history', 'remote:all']);
  });

  test('symbolsOfBars reads the symbols of bars inputs, or all', () => {
    assert.deepEqual(symbolsOfBars([barsOf('AAPL'), HISTORY, modelsOf('x'), barsOf('BRK.B')]), ['AAPL', 'BRK.B']);
    assert.equal(symbolsOfBars([barsOf('AAPL'), ALL_BARS]), 'all');
  });
});

describe('AnswerStore', () => {
  const value = (n: number) => Buffer.alloc(n, 1);

  test('a change evicts exactly the answers that read it (and family:* readers)', () => {
    const store = new AnswerStore<Buffer>({ maxBytes: 1_000_000, maxEntryBytes: 100_000 });
    store.set('aapl', { value: value(10), inputs: [barsOf('AAPL'), modelsOf('d')], bytes: 10 });
    store.set('msft', { value: value(10), inputs: [barsOf('MSFT')], bytes: 10 });
    store.set('symbols', { value: value(10), inputs: [ALL_BARS], bytes: 10 });
    store.set('history', { value: value(10), inputs: [HISTORY], bytes: 10 });
    store.evict([barsOf('AAPL')]);
    assert.equal(store.get('aapl'), undefined);
    assert.equal(store.get('symbols'), undefined);
    assert.ok(store.get('msft'));
    assert.ok(store.get('history'));
    assert.equal(store.evictions, 2);
    store.evict([ALL_BARS]);
    assert.equal(store.get('msft'), undefined);
    assert.ok(store.get('history'));
    store.evict([HISTORY]);
    assert.equal(store.entries, 0);
  });

  test('bounded by bytes: the least recently used answer goes first; one over maxEntryBytes is refused', () => {
    const store = new AnswerStore<Buffer>({ maxBytes: 1_000, maxEntryBytes: 400 });
    assert.ok(store.set('a', { value: value(350), inputs: [HISTORY], bytes: 350 }));
    assert.ok(store.set('b', { value: value(350), inputs: [HISTORY], bytes: 350 }));
    assert.ok(store.get('a'));
    assert.ok(store.set('c', { value: value(350), inputs: [barsOf('X')], bytes: 350 }));
    assert.equal(store.get('b'), undefined, 'b was the least recently used');
    assert.ok(store.get('a') && store.get('c'));
    assert.ok(store.bytes <= 1_000, `${store.bytes} bytes held`);
    assert.equal(store.set('big', { value: value(500), inputs: [], bytes: 500 }), false);
    assert.equal(store.get('big'), undefined);
    // The index follows evictions for room: evicting HISTORY now touches only what is still there.
    store.evict([HISTORY]);
    assert.equal(store.get('a'), undefined);
    assert.ok(store.get('c'));
  });

  test('replacing a key re-indexes it under its new inputs only', () => {
    const store = new AnswerStore<Buffer>({ maxBytes: 1_000, maxEntryBytes: 1_000 });
    store.set('k', { value: value(1), inputs: [barsOf('A')], bytes: 1 });
    store.set('k', { value: value(2), inputs: [barsOf('B')], bytes: 2 });
    store.evict([barsOf('A')]);
    assert.equal(store.get('k')?.length, 2);
    store.evict([barsOf('B')]);
    assert.equal(store.get('k'), undefined);
  });
});

describe('createResponseCache', () => {
  test('stores only what no change touched since the execution started; serves nothing while unavailable', () => {
    const cache = createResponseCache<string>({ maxBytes: 10_000 });
    const raced = cache.versions.now();
    cache.versions.changed([barsOf('AAPL')]);
    assert.equal(cache.store('k', 'old', 3, [barsOf('AAPL')], raced), 'changed', 'computed while AAPL changed');
    assert.equal(cache.lookup('k'), undefined);
    assert.equal(cache.store('k', 'new', 3, [barsOf('AAPL')], cache.versions.now()), 'stored');
    assert.equal(cache.lookup('k'), 'new');
    cache.versions.changed([barsOf('AAPL')]);
    assert.equal(cache.lookup('k'), undefined, 'evicted by the change');

    assert.equal(cache.store('k', 'v', 1, [HISTORY], cache.versions.now()), 'stored');
    const before = cache.versions.now();
    cache.setAvailable(false);
    assert.equal(cache.lookup('k'), undefined);
    assert.equal(cache.store('j', 'v', 1, [HISTORY], cache.versions.now()), 'unavailable');
    cache.setAvailable(true);
    assert.equal(cache.lookup('k'), undefined, 'dropped: changes may have been missed meanwhile');
    assert.equal(cache.store('j', 'v', 1, [], before), 'changed', 'an execution from before the outage stores nothing');
    assert.equal(cache.stats.entries, 0);
  });
});
