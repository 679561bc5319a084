import assert from 'node:assert/strict';
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { lastCompleteSession } from '../../../src/infra/market-data/nyse-calendar.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { STAGING_DIRECTORY, startSchedule, versionName } from '../../../src/modules/retraining/index.js';
import { modelsFixture } from '../../helpers/models.js';

const silent = createLogger({ level: 'silent', format: 'json' });

describe('lastCompleteSession: what a scheduled retraining trains up to', () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    // [now (UTC), expected session date, why]
    ['2026-12-04T20:59:59Z', '2026-12-03', 'Friday 15:59:59 New York (EST): the session is still open'],
    ['2026-12-04T21:00:00Z', '2026-12-04', 'Friday 16:00 New York: closed'],
    ['2026-12-05T15:00:00Z', '2026-12-04', 'Saturday: the Friday'],
    ['2026-12-07T14:00:00Z', '2026-12-04', 'Monday morning: still the Friday'],
    ['2026-07-06T19:59:59Z', '2026-07-02', 'Monday 15:59 EDT after Independence Day observed on Friday 07-03'],
    ['2026-07-06T20:00:00Z', '2026-07-06', 'Monday 16:00 EDT'],
    ['2026-12-26T12:00:00Z', '2026-12-24', 'the Saturday after Christmas (a Friday holiday): Thursday the 24th, an early close'],
    ['2001-09-17T12:00:00Z', '2001-09-10', 'before the reopening after September 11: the last session was 09-10'],
    ['2021-04-22T02:00:00Z', '2021-04-21', 'the evening of the last bar of the committed data, New York time'],
  ];
  for (const [now, expected, why] of cases) {
    test(`${now} → ${expected} (${why})`, () => {
      assert.equal(lastCompleteSession(new Date(now)).toISOString(), `${expected}T00:00:00.000Z`);
    });
  }
});

describe('versionName', () => {
  test('the tick in UTC, a family suffix for the trees; valid version names', () => {
    assert.equal(versionName(new Date('2026-12-04T23:30:00.000Z'), 'logistic'), 'r20261204T233000Z');
    assert.equal(versionName(new Date('2026-12-04T23:30:05.000Z'), 'gbt'), 'r20261204T233005Z-gbt');
  });
});

describe('startSchedule (croner)', () => {
  test('names each tick by its scheduled second, not the moment the timer fired; a tick during a running one goes to onBusy', async () => {
    const ticks: Date[] = [];
    const busy: Date[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const schedule = startSchedule({
      pattern: '* * * * * *',
      timezone: 'UTC',
      logger: silent,
      onTick: async (tick) => {
        ticks.push(tick);
        if (ticks.length === 1) await held; // the first tick runs long: the next ones find it busy
      },
      onBusy: (tick) => busy.push(tick),
    });
    try {
      const next = schedule.nextRun()!;
      assert.equal(next.getTime() % 1000, 0, 'a per-second schedule fires on whole seconds');
      await new Promise((resolve) => setTimeout(resolve, next.getTime() - Date.now() + 2_300));
      assert.equal(ticks.length, 1, 'no second tick while the first runs');
      assert.ok(busy.length >= 1, `ticks while busy: ${busy.length}`);
      for (const tick of [...ticks, ...busy]) assert.equal(tick.getTime() % 1000, 0, tick.toISOString());
      assert.equal(ticks[0]!.getTime(), next.getTime(), 'the first tick is the scheduled second');
      assert.ok(busy[0]!.getTime() > ticks[0]!.getTime());
      release();
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      assert.ok(ticks.length >= 2, 'ticks resume once the first is done');
    } finally {
      schedule.stop();
      release();
    }
    const stopped = ticks.length;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal(ticks.length, stopped, 'no tick after stop()');
  });

  test('a failing tick is logged and the schedule goes on', async () => {
    const errors: unknown[] = [];
    const logger = { ...silent, error: (fields: { err: unknown }) => errors.push(fields.err) } as unknown as typeof silent;
    let calls = 0;
    const schedule = startSchedule({
      pattern: '* * * * * *',
      timezone: 'UTC',
      logger,
      onTick: async () => {
        calls++;
        throw new Error('boom');
      },
      onBusy: () => undefined,
    });
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    schedule.stop();
    assert.ok(calls >= 2, `calls: ${calls}`);
    assert.equal(errors.length, calls);
    assert.match(String(errors[0]), /boom/);
  });
});

describe('the registry and the staging directory', () => {
  const cleanups: Array<() => void> = [];
  after(() => cleanups.forEach((c) => c()));

  test('hidden directories are never scanned; verifyDirectory checks a staged copy where it is', async () => {
    const fixture = await modelsFixture(['direction-1d']);
    cleanups.push(fixture.remove);
    const staged = path.join(fixture.dir, STAGING_DIRECTORY, 'run-1', 'direction-1d', 'v9');
    await mkdir(path.dirname(staged), { recursive: true });
    await cp(path.join(fixture.dir, 'direction-1d', 'v1'), staged, { recursive: true });
    await cp(path.join(fixture.dir, 'direction-1d', 'v1'), path.join(fixture.dir, 'direction-1d', '.v1-copy'), { recursive: true });
    const registry = await ModelRegistry.load({
      directory: fixture.dir,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: silent,
    });
    try {
      assert.deepEqual(registry.strategies(), ['direction-1d']);
      assert.deepEqual(
        registry.versionsOf('direction-1d').map((e) => e.manifest.version),
        ['v1'],
      );
      assert.deepEqual(registry.refused, [], 'nothing hidden was tried');
      // The staged copy says it is v1 but sits in v9: refused, as activation would refuse it.
      await assert.rejects(registry.verifyDirectory(staged), /manifest says direction-1d\/v1, but the files are in direction-1d\/v9/);
      const good = path.join(fixture.dir, STAGING_DIRECTORY, 'run-2', 'direction-1d', 'v1');
      await cp(path.join(fixture.dir, 'direction-1d', 'v1'), good, { recursive: true });
      assert.equal((await registry.verifyDirectory(good)).version, 'v1');
      assert.equal(
        registry.find('direction-1d', 'v1')!.directory,
        path.join(fixture.dir, 'direction-1d', 'v1'),
        'verifying registers nothing',
      );
    } finally {
      await registry.close();
    }
  });
});
