import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { HealthService } from '../../../src/modules/health/index.js';
import { healthRoutes, type HealthRoutesOptions } from '../../../src/server/health-routes.js';

async function app(options: Partial<HealthRoutesOptions> = {}) {
  const fastify = Fastify();
  const health = new HealthService({
    checks: [{ name: 'database', check: async () => ({ status: 'ok', detail: 'PostgreSQL 17 at /var/lib/x' }) }],
    version: '1.2.3',
  });
  await fastify.register(healthRoutes({ health, isProduction: false, perSecond: 3, ...options }));
  return fastify;
}

describe('/health/* routes', () => {
  test('past the per-address limit both paths answer 429 with Retry-After; another address is not affected', async () => {
    const fastify = await app();
    const burst = [];
    for (let i = 0; i < 8; i++)
      burst.push(await fastify.inject({ url: i % 2 ? '/health/live' : '/health/ready', remoteAddress: '10.0.0.1' }));
    const other = await fastify.inject({ url: '/health/ready', remoteAddress: '10.0.0.2' });
    const first = burst.findIndex((r) => r.statusCode === 429);
    // 3 per one-second window, live and ready together; the window may turn once during the burst.
    assert.ok(first >= 3 && first <= 6, `first refusal at ${first}: ${burst.map((r) => r.statusCode).join(',')}`);
    assert.ok(burst.slice(0, first).every((r) => r.statusCode === 200));
    const refused = burst[first]!;
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.headers['ratelimit-limit'], '3');
    assert.match(refused.json<{ error: string }>().error, /at most 3 per second/);
    assert.equal(other.statusCode, 200);
    await fastify.close();
  });

  test('a failing limiter refuses (fails closed) instead of answering', async () => {
    const fastify = await app({ limiter: { consume: () => Promise.reject(new Error('store gone')) } });
    for (const url of ['/health/ready', '/health/live']) {
      const response = await fastify.inject({ url });
      assert.equal(response.statusCode, 429);
      assert.equal(response.headers['retry-after'], '1');
    }
    await fastify.close();
  });

  test('in production, readiness shows names and states only', async () => {
    const fastify = await app({ isProduction: true });
    const body = (await fastify.inject({ url: '/health/ready' })).json<{ status: string; components: unknown[] }>();
    assert.deepEqual(body.components, [{ name: 'database', status: 'ok' }]);
    await fastify.close();
  });
});
