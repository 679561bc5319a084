import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Lifecycle, shutdownBudget } from '../../../src/shared/lifecycle.js';

function recordingLogger() {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return { warnings, logger: { warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) } };
}

describe('Lifecycle', () => {
  test('closes the steps in reverse order of registration, each once', async () => {
    const { logger, warnings } = recordingLogger();
    const lifecycle = new Lifecycle({ logger, stepMs: 1_000 });
    const closed: string[] = [];
    for (const name of ['database', 'redis', 'history']) lifecycle.add({ name, close: async () => void closed.push(name) });
    lifecycle.add({ name: 'sync', close: () => void closed.push('sync') });
    await lifecycle.stop();
    assert.deepEqual(closed, ['sync', 'history', 'redis', 'database']);
    assert.deepEqual(warnings, []);
  });

  test('stop is idempotent: a second and a concurrent call return the same promise and close nothing again', async () => {
    const { logger } = recordingLogger();
    const lifecycle = new Lifecycle({ logger, stepMs: 1_000 });
    let closes = 0;
    lifecycle.add({ name: 'pool', close: async () => void closes++ });
    const first = lifecycle.stop();
    const concurrent = lifecycle.stop();
    assert.equal(first, concurrent);
    await first;
    await lifecycle.stop();
    assert.equal(closes, 1);
  });

  test('a hung step is abandoned at its deadline with a warning, and the steps after it still run', async () => {
    const { logger, warnings } = recordingLogger();
    const lifecycle = new Lifecycle({ logger, stepMs: 40 });
    const closed: string[] = [];
    lifecycle.add({ name: 'database', close: async () => void closed.push('database') });
    lifecycle.add({ name: 'hung', close: () => new Promise<void>(() => undefined) });
    lifecycle.add({ name: 'slow but allowed', timeoutMs: 500, close: () => new Promise<void>((r) => setTimeout(r, 80)) });
    const started = performance.now();
    await lifecycle.stop();
    const elapsed = performance.now() - started;
    assert.deepEqual(closed, ['database']);
    assert.equal(warnings.length, 1, 'the step with its own longer deadline is not abandoned');
    assert.equal(warnings[0]!.fields.part, 'hung');
    assert.equal(warnings[0]!.fields.timeoutMs, 40);
    assert.match(warnings[0]!.message, /did not close in time/);
    assert.ok(elapsed >= 110 && elapsed < 400, `80 ms + 40 ms deadline, took ${elapsed}`);
  });

  test('a failing step (rejected or thrown synchronously) is logged, not thrown, and the rest still close', async () => {
    const { logger, warnings } = recordingLogger();
    const lifecycle = new Lifecycle({ logger, stepMs: 1_000 });
    const closed: string[] = [];
    lifecycle.add({ name: 'database', close: async () => void closed.push('database') });
    lifecycle.add({ name: 'rejects', close: () => Promise.reject(new Error('pool gone')) });
    lifecycle.add({
      name: 'throws',
      close: () => {
        throw new Error('already closed');
      },
    });
    await lifecycle.stop();
    assert.deepEqual(closed, ['database']);
    assert.deepEqual(
      warnings.map((w) => [w.fields.part, (w.fields.err as Error).message, w.message]),
      [
        ['throws', 'already closed', 'error while closing throws'],
        ['rejects', 'pool gone', 'error while closing rejects'],
      ],
    );
  });

  test('a step registered while stopping is still released', async () => {
    const { logger } = recordingLogger();
    const lifecycle = new Lifecycle({ logger, stepMs: 1_000 });
    const closed: string[] = [];
    lifecycle.add({
      name: 'first',
      close: async () => {
        closed.push('first');
        lifecycle.add({ name: 'late', close: () => void closed.push('late') });
      },
    });
    lifecycle.add({ name: 'second', close: () => void closed.push('second') });
    await lifecycle.stop();
    assert.deepEqual(closed, ['second', 'first', 'late']);
  });
});

describe('shutdownBudget', () => {
  test('40% draining, 25% history, 5% per step with a 50 ms floor', () => {
    assert.deepEqual(shutdownBudget(10_000), { drainMs: 4_000, historyMs: 2_500, stepMs: 500 });
    assert.deepEqual(shutdownBudget(100), { drainMs: 40, historyMs: 25, stepMs: 50 });
  });
});
