import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HealthService } from '../../../src/modules/health/index.js';
import type { HealthCheck } from '../../../src/shared/health.js';

const check = (name: string, result: Awaited<ReturnType<HealthCheck['check']>> | Error | 'hang'): HealthCheck => ({
  name,
  check: () =>
    result === 'hang' ? new Promise(() => undefined) : result instanceof Error ? Promise.reject(result) : Promise.resolve(result),
});

describe('HealthService', () => {
  test('all ok → ok and ready', async () => {
    const report = await new HealthService({
      checks: [check('a', { status: 'ok' }), check('b', { status: 'ok', detail: 'fine' })],
      version: '1.0.0',
    }).report();
    assert.equal(report.status, 'ok');
    assert.equal(report.ready, true);
    assert.deepEqual(report.components, [
      { name: 'a', status: 'ok' },
      { name: 'b', status: 'ok', detail: 'fine' },
    ]);
  });

  test('a degraded component keeps the instance ready', async () => {
    const report = await new HealthService({
      checks: [check('a', { status: 'ok' }), check('b', { status: 'degraded' })],
      version: '1',
    }).report();
    assert.equal(report.status, 'degraded');
    assert.equal(report.ready, true);
  });

  test('a down component, a throwing check or a hung check makes it unready', async () => {
    const service = new HealthService({
      checks: [check('a', { status: 'ok' }), check('b', new Error('boom')), check('c', 'hang')],
      version: '1',
      timeoutMs: 50,
    });
    const report = await service.report();
    assert.equal(report.status, 'down');
    assert.equal(report.ready, false);
    assert.deepEqual(report.components[1], { name: 'b', status: 'down', detail: 'boom' });
    assert.match(report.components[2]!.detail!, /no answer within 50 ms/);
  });

  test('draining makes it unready whatever the components say', async () => {
    const service = new HealthService({ checks: [check('a', { status: 'ok' })], version: '1' });
    service.markDraining();
    const report = await service.report();
    assert.equal(report.status, 'draining');
    assert.equal(report.ready, false);
  });

  test('cached: concurrent callers share one computation, and none runs again within cacheMs', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const slow: HealthCheck = {
      name: 'database',
      check: () => {
        runs++;
        return new Promise((resolve) => (release = () => resolve({ status: 'ok' })));
      },
    };
    const service = new HealthService({ checks: [slow], version: '1', timeoutMs: 1_000, cacheMs: 200 });
    const pending = Array.from({ length: 50 }, () => service.report());
    await new Promise((resolve) => setImmediate(resolve));
    release();
    const reports = await Promise.all(pending);
    assert.equal(runs, 1);
    assert.ok(reports.every((r) => r.status === 'ok'));
    await service.report();
    assert.equal(runs, 1, 'within cacheMs the report is reused');
    service.markDraining();
    assert.equal((await service.report()).status, 'draining', 'draining shows at once, cache or not');
    await new Promise((resolve) => setTimeout(resolve, 220));
    const next = service.report();
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await next;
    assert.equal(runs, 2, 'after cacheMs it is computed again');
  });

  test('cacheMs 0: every call computes, but concurrent calls still share one computation', async () => {
    let runs = 0;
    const service = new HealthService({ checks: [{ name: 'a', check: async () => (runs++, { status: 'ok' as const }) }], version: '1' });
    await Promise.all([service.report(), service.report(), service.report()]);
    assert.equal(runs, 1);
    await service.report();
    assert.equal(runs, 2);
  });
});
