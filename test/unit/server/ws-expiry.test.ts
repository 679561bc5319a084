import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExpirySweep } from '../../../src/server/ws.expiry.js';

describe('ExpirySweep', () => {
  test('expires each item once, at or after its deadline and within one sweep of it; unwatched items never', async () => {
    const expired: Array<{ item: string; at: number }> = [];
    const sweep = new ExpirySweep<string>({ sweepMs: 20, expire: (item) => expired.push({ item, at: Date.now() }), onError: assert.fail });
    const start = Date.now();
    const due = { soon: start + 60, later: start + 150, dropped: start + 60 };
    for (const [item, at] of Object.entries(due)) sweep.watch(item, at);
    sweep.unwatch('dropped');
    await sleep(400);
    assert.deepEqual(
      expired.map((e) => e.item),
      ['soon', 'later'],
    );
    for (const { item, at } of expired) {
      const deadline = due[item as keyof typeof due];
      assert.ok(at >= deadline, `${item} expired ${deadline - at} ms early`);
      assert.ok(at <= deadline + 20 + 100, `${item} expired ${at - deadline} ms late`); // one sweep, plus a loaded machine's slack
    }
    assert.equal(sweep.size, 0);
  });

  test('watching again replaces the deadline', async () => {
    const expired: string[] = [];
    const sweep = new ExpirySweep<string>({ sweepMs: 10, expire: (item) => expired.push(item), onError: assert.fail });
    sweep.watch('a', Date.now() + 30);
    sweep.watch('a', Date.now() + 10_000);
    await sleep(120);
    assert.deepEqual(expired, []);
    assert.equal(sweep.size, 1);
    sweep.close();
    assert.equal(sweep.size, 0);
  });

  test('an item whose expiry throws is reported; the others still expire; nothing escapes the timer', async () => {
    const expired: string[] = [];
    const errors: Array<{ message: string; item: string }> = [];
    const sweep = new ExpirySweep<string>({
      sweepMs: 10,
      expire: (item) => {
        if (item === 'bad') throw new Error('socket gone');
        expired.push(item);
      },
      onError: (error, item) => errors.push({ message: (error as Error).message, item }),
    });
    const now = Date.now();
    sweep.watch('bad', now);
    sweep.watch('good', now);
    await sleep(80);
    assert.deepEqual(expired, ['good']);
    assert.deepEqual(errors, [{ message: 'socket gone', item: 'bad' }]);
  });

  test('sweeps only while something is watched', async () => {
    let sweeps = 0;
    const sweep = new ExpirySweep<string>({
      sweepMs: 10,
      expire: () => undefined,
      onError: assert.fail,
      now: () => (sweeps++, Date.now()),
    });
    await sleep(60);
    assert.equal(sweeps, 0, 'no sweep before anything is watched');
    sweep.watch('a', Date.now() + 60_000);
    // Timers run late on a loaded machine: wait for the sweeps (bounded) rather than for a fixed time.
    const deadline = Date.now() + 5_000;
    while (sweeps < 3 && Date.now() < deadline) await sleep(10);
    assert.ok(sweeps >= 3, `${sweeps} sweeps while watching`);
    sweep.unwatch('a');
    const after = sweeps;
    await sleep(80);
    assert.equal(sweeps, after, 'no sweep once nothing is watched');
  });

  test('refuses a sweep period that is not a positive integer', () => {
    for (const sweepMs of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new ExpirySweep({ sweepMs, expire: () => undefined, onError: () => undefined }),
        /sweepMs must be a positive integer/,
      );
    }
  });
});
