import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { LoadedModel } from '../../../src/infra/inference/engine.js';
import { MicroBatcher, type MicroBatcherOptions } from '../../../src/infra/inference/micro-batcher.js';

const FEATURES = 3;

/**
 * A model that records every run and returns the FIRST feature of each row as its "probability", so each
 * output value identifies the row it came from.
 */
class FakeModel implements LoadedModel {
  readonly signature = { inputName: 'features', outputName: 'probability', featureCount: FEATURES };
  readonly runs: Array<{ rows: number; input: number[] }> = [];
  failNext: Error | undefined;
  /** When set, runs wait on this before answering (to observe concurrency). */
  gate: Promise<void> | undefined;
  released = false;

  async run(input: Float32Array, rows: number): Promise<Float32Array> {
    this.runs.push({ rows, input: Array.from(input) });
    if (this.gate) await this.gate;
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    assert.equal(input.length, rows * FEATURES, 'the batcher passes rows × featureCount values');
    return Float32Array.from({ length: rows }, (_, r) => input[r * FEATURES]!);
  }

  async release(): Promise<void> {
    this.released = true;
  }
}

/** `rows` rows whose first feature is id·1000 + r (exact in float32), the others filler. */
function rowsOf(id: number, rows: number): { input: Float32Array; expected: number[] } {
  const input = new Float32Array(rows * FEATURES);
  const expected: number[] = [];
  for (let r = 0; r < rows; r++) {
    input[r * FEATURES] = id * 1000 + r;
    input[r * FEATURES + 1] = -1;
    input[r * FEATURES + 2] = 0.5;
    expected.push(id * 1000 + r);
  }
  return { input, expected };
}

function batcher(options: Partial<MicroBatcherOptions> = {}) {
  const model = new FakeModel();
  const onRun: Array<{ rows: number; seconds: number }> = [];
  const b = new MicroBatcher(model, {
    maxBatchSize: 64,
    maxQueueDelayMs: 0,
    onRun: (rows, seconds) => onRun.push({ rows, seconds }),
    ...options,
  });
  return { model, b, onRun };
}

/**
 * Calls score() from a timers-phase callback, then again from an immediate scheduled right after it. An
 * immediate scheduled in the timers phase runs in the same loop iteration's check phase, before any new
 * 1 ms timer can fire (that needs the next timers phase), and after the batcher's own setImmediate (FIFO):
 * so the outcome is deterministic, not a race against the clock.
 */
function callThenCallInNextImmediate(b: MicroBatcher, model: FakeModel) {
  return new Promise<{ first: Promise<Float32Array>; second: Promise<Float32Array>; runsBeforeSecond: number }>((resolve) => {
    setTimeout(() => {
      const first = b.score(rowsOf(1, 1).input, 1);
      setImmediate(() => {
        const runsBeforeSecond = model.runs.length;
        resolve({ first, second: b.score(rowsOf(2, 2).input, 2), runsBeforeSecond });
      });
    }, 0);
  });
}

describe('MicroBatcher', () => {
  test('concurrent score() calls in the same tick share ONE run; each caller gets exactly its own rows, in order', async () => {
    const { model, b, onRun } = batcher();
    const requests = [rowsOf(1, 3), rowsOf(2, 1), rowsOf(3, 5), rowsOf(4, 2)];
    const results = await Promise.all(requests.map((r, i) => b.score(r.input, [3, 1, 5, 2][i]!)));
    assert.equal(model.runs.length, 1);
    assert.equal(model.runs[0]!.rows, 11);
    // The run's input is the callers' rows concatenated in call order.
    assert.deepEqual(
      model.runs[0]!.input,
      requests.flatMap((r) => Array.from(r.input)),
    );
    results.forEach((out, i) => {
      assert.ok(out instanceof Float32Array);
      assert.deepEqual(Array.from(out), requests[i]!.expected, `caller ${i}`);
    });
    assert.equal(onRun.length, 1);
    assert.equal(onRun[0]!.rows, 11);
    assert.ok(onRun[0]!.seconds >= 0 && onRun[0]!.seconds < 1);
  });

  test('calls made from microtasks of the same turn still merge; a call after the flush starts a new run', async () => {
    const { model, b } = batcher();
    const first = b.score(rowsOf(1, 1).input, 1);
    const second = Promise.resolve().then(() => b.score(rowsOf(2, 2).input, 2));
    const [a, c] = await Promise.all([first, second]);
    assert.deepEqual(Array.from(a), [1000]);
    assert.deepEqual(Array.from(c), [2000, 2001]);
    assert.equal(model.runs.length, 1);
    await nextMacrotask();
    assert.deepEqual(Array.from(await b.score(rowsOf(3, 1).input, 1)), [3000]);
    assert.equal(model.runs.length, 2);
  });

  test('a single caller gets its own buffer scored without copies or reordering', async () => {
    const { model, b } = batcher();
    const { input, expected } = rowsOf(7, 4);
    assert.deepEqual(Array.from(await b.score(input, 4)), expected);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [4],
    );
  });

  test('a batch over maxBatchSize is split into runs of at most maxBatchSize, results stitched in order', async () => {
    const { model, b, onRun } = batcher({ maxBatchSize: 4 });
    const one = rowsOf(1, 10);
    const out = await b.score(one.input, 10);
    assert.deepEqual(Array.from(out), one.expected);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [4, 4, 2],
    );
    assert.deepEqual(
      model.runs.map((r) => r.input[0]),
      [1000, 1004, 1008],
      'chunks are consecutive slices',
    );
    assert.deepEqual(
      onRun.map((r) => r.rows),
      [4, 4, 2],
    );
  });

  test('queued rows reaching maxBatchSize flush immediately, without waiting for the tick or the delay', async () => {
    const { model, b } = batcher({ maxBatchSize: 5, maxQueueDelayMs: 1 });
    const p1 = b.score(rowsOf(1, 2).input, 2);
    const p2 = b.score(rowsOf(2, 2).input, 2);
    assert.equal(model.runs.length, 0, '4 < 5 rows: still queued');
    const p3 = b.score(rowsOf(3, 1).input, 1);
    // The run started synchronously inside score(): no timer, no tick.
    assert.equal(model.runs.length, 1);
    assert.equal(model.runs[0]!.rows, 5);
    const p4 = b.score(rowsOf(4, 1).input, 1); // queued behind, in a new batch
    assert.equal(model.runs.length, 1);
    const [r1, r2, r3, r4] = await Promise.all([p1, p2, p3, p4]);
    assert.deepEqual(
      [r1, r2, r3, r4].map((r) => Array.from(r)),
      [[1000, 1001], [2000, 2001], [3000], [4000]],
    );
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [5, 1],
    );
  });

  test('a single request larger than maxBatchSize flushes at once and is split', async () => {
    const { model, b } = batcher({ maxBatchSize: 3, maxQueueDelayMs: 1 });
    const big = rowsOf(5, 7);
    const pending = b.score(big.input, 7);
    assert.equal(model.runs.length, 1, 'first chunk started synchronously');
    assert.deepEqual(Array.from(await pending), big.expected);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [3, 3, 1],
    );
  });

  test('maxQueueDelayMs > 0 waits past the next immediate (where a delay of 0 would flush) and still merges', async () => {
    const { model, b } = batcher({ maxQueueDelayMs: 1 });
    const { first, second, runsBeforeSecond } = await callThenCallInNextImmediate(b, model);
    assert.equal(runsBeforeSecond, 0, 'still waiting for the delay');
    const [r1, r2] = await Promise.all([first, second]);
    assert.deepEqual(Array.from(r1), [1000]);
    assert.deepEqual(Array.from(r2), [2000, 2001]);
    assert.equal(model.runs.length, 1);
    assert.equal(model.runs[0]!.rows, 3);
  });

  test('with delay 0 the queue flushes in the next immediate: a call made there is a separate run', async () => {
    const { model, b } = batcher({ maxQueueDelayMs: 0 });
    const { first, second, runsBeforeSecond } = await callThenCallInNextImmediate(b, model);
    assert.equal(runsBeforeSecond, 1);
    assert.deepEqual([Array.from(await first), Array.from(await second)], [[1000], [2000, 2001]]);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [1, 2],
    );
  });

  test('a model error rejects every caller of that run, and the next run works', async () => {
    const { model, b, onRun } = batcher();
    model.failNext = new Error('session exploded');
    const results = await Promise.allSettled([
      b.score(rowsOf(1, 2).input, 2),
      b.score(rowsOf(2, 1).input, 1),
      b.score(rowsOf(3, 3).input, 3),
    ]);
    assert.equal(model.runs.length, 1);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.message, 'session exploded');
    }
    assert.equal(onRun.length, 0, 'a failed run is not reported as a run');
    const ok = await Promise.all([b.score(rowsOf(4, 1).input, 1), b.score(rowsOf(5, 2).input, 2)]);
    assert.deepEqual(
      ok.map((r) => Array.from(r)),
      [[4000], [5000, 5001]],
    );
    assert.equal(model.runs.length, 2);
  });

  test('an error in a later chunk of a split batch rejects all callers of that batch', async () => {
    const { model, b } = batcher({ maxBatchSize: 3 });
    let call = 0;
    const original = model.run.bind(model);
    model.run = async (input, rows) => {
      if (++call === 2) throw new Error('second chunk failed');
      return original(input, rows);
    };
    // 1 row queued, then 4 more: 5 ≥ 3 flushes one batch of 5 rows from two callers, run as chunks of 3 + 2.
    const results = await Promise.allSettled([b.score(rowsOf(1, 1).input, 1), b.score(rowsOf(2, 4).input, 4)]);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [3],
      'only the successful first chunk reached the fake',
    );
    assert.equal(call, 2);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    for (const r of results) assert.equal((r as PromiseRejectedResult).reason.message, 'second chunk failed');
  });

  test('a bad input length rejects with the message (and does not disturb others)', async () => {
    const { model, b } = batcher();
    await assert.rejects(b.score(new Float32Array(5), 2), { message: 'input holds 5 values; 2 rows × 3 features = 6' });
    await assert.rejects(b.score(new Float32Array(3), 0), { message: 'input holds 3 values; 0 rows × 3 features = 0' });
    const good = b.score(rowsOf(1, 1).input, 1);
    const bad = b.score(new Float32Array(4), 1);
    await assert.rejects(bad, { message: 'input holds 4 values; 1 rows × 3 features = 3' });
    assert.deepEqual(Array.from(await good), [1000]);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [1],
    );
  });

  test('zero rows resolves immediately with an empty array and runs nothing', async () => {
    const { model, b, onRun } = batcher();
    const out = await b.score(new Float32Array(0), 0);
    assert.ok(out instanceof Float32Array);
    assert.equal(out.length, 0);
    await nextMacrotask();
    assert.equal(model.runs.length, 0);
    assert.equal(onRun.length, 0);
  });

  test('the constructor rejects maxQueueDelayMs outside [0, 1] and maxBatchSize < 1', () => {
    const model = new FakeModel();
    assert.throws(() => new MicroBatcher(model, { maxBatchSize: 8, maxQueueDelayMs: 1.5 }), {
      message: 'maxQueueDelayMs must be between 0 and 1, got 1.5',
    });
    assert.throws(() => new MicroBatcher(model, { maxBatchSize: 8, maxQueueDelayMs: 2 }), {
      message: 'maxQueueDelayMs must be between 0 and 1, got 2',
    });
    assert.throws(() => new MicroBatcher(model, { maxBatchSize: 8, maxQueueDelayMs: -1 }), {
      message: 'maxQueueDelayMs must be between 0 and 1, got -1',
    });
    assert.throws(
      () => new MicroBatcher(model, { maxBatchSize: 8, maxQueueDelayMs: Number.NaN }),
      /maxQueueDelayMs must be between 0 and 1, got NaN/,
    );
    assert.throws(() => new MicroBatcher(model, { maxBatchSize: 0, maxQueueDelayMs: 0 }), {
      message: 'maxBatchSize must be at least 1, got 0',
    });
    assert.throws(() => new MicroBatcher(model, { maxBatchSize: -3, maxQueueDelayMs: 0 }), {
      message: 'maxBatchSize must be at least 1, got -3',
    });
    assert.throws(
      () => new MicroBatcher(model, { maxBatchSize: Number.NaN, maxQueueDelayMs: 0 }),
      /maxBatchSize must be at least 1, got NaN/,
    );
    assert.doesNotThrow(() => new MicroBatcher(model, { maxBatchSize: 1, maxQueueDelayMs: 1 }));
    assert.doesNotThrow(() => new MicroBatcher(model, { maxBatchSize: 1, maxQueueDelayMs: 0 }));
  });

  test('maxBatchSize 1: every row is its own run, and each caller gets its own rows', async () => {
    const { model, b } = batcher({ maxBatchSize: 1 });
    const outs = await Promise.all([b.score(rowsOf(1, 2).input, 2), b.score(rowsOf(2, 1).input, 1)]);
    assert.deepEqual(
      outs.map((r) => Array.from(r)),
      [[1000, 1001], [2000]],
    );
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [1, 1, 1],
    );
    // Each call flushes at once, so the two batches' runs interleave; the rows each run saw are still right.
    assert.deepEqual(model.runs.map((r) => r.input[0]).sort(), [1000, 1001, 2000]);
  });

  test('a slow run does not block the next batch: runs overlap and each caller still gets its own rows', async () => {
    const { model, b } = batcher();
    let open!: () => void;
    model.gate = new Promise((resolve) => (open = resolve));
    const first = b.score(rowsOf(1, 2).input, 2);
    await nextMacrotask();
    assert.equal(model.runs.length, 1);
    const second = b.score(rowsOf(2, 1).input, 1);
    await nextMacrotask();
    assert.equal(model.runs.length, 2, 'the second batch ran while the first was still pending');
    open();
    assert.deepEqual(Array.from(await first), [1000, 1001]);
    assert.deepEqual(Array.from(await second), [2000]);
  });

  test('the output of one caller is its own copy (mutating it does not affect another caller)', async () => {
    const { b } = batcher();
    const [a, c] = await Promise.all([b.score(rowsOf(1, 2).input, 2), b.score(rowsOf(2, 2).input, 2)]);
    a.fill(-1);
    assert.deepEqual(Array.from(c), [2000, 2001]);
  });
});

describe('MicroBatcher.scoreAsOneRun (the explicit large-batch path)', () => {
  test('a batch far above maxBatchSize is one run, counted once by onRun, rows in order', async () => {
    const { model, b, onRun } = batcher({ maxBatchSize: 4 });
    const { input, expected } = rowsOf(7, 100);
    const output = await b.scoreAsOneRun(input, 100);
    assert.deepEqual(Array.from(output), expected);
    assert.deepEqual(
      model.runs.map((r) => r.rows),
      [100],
    );
    assert.deepEqual(
      onRun.map((r) => r.rows),
      [100],
    );
  });

  test('it is not merged with queued requests, which keep their own (split) runs', async () => {
    const { model, b } = batcher({ maxBatchSize: 4 });
    const queued = b.score(rowsOf(1, 2).input, 2);
    const whole = b.scoreAsOneRun(rowsOf(2, 10).input, 10);
    assert.deepEqual(Array.from(await queued), [1000, 1001]);
    assert.deepEqual(Array.from(await whole), rowsOf(2, 10).expected);
    assert.deepEqual(
      model.runs.map((r) => r.rows).sort((x, y) => x - y),
      [2, 10],
    );
  });

  test('a wrong input length is refused with the arithmetic; zero rows runs nothing; a failing run rejects', async () => {
    const { model, b } = batcher();
    await assert.rejects(b.scoreAsOneRun(new Float32Array(5), 2), /input holds 5 values; 2 rows × 3 features = 6/);
    assert.equal((await b.scoreAsOneRun(new Float32Array(0), 0)).length, 0);
    assert.equal(model.runs.length, 0);
    model.failNext = new Error('onnxruntime: out of memory');
    await assert.rejects(b.scoreAsOneRun(rowsOf(1, 3).input, 3), /out of memory/);
  });
});
