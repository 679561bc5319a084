import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createRedisEventBus } from '../../src/infra/pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { PredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, wsClient } from '../helpers/graphql.js';
import { SignalRecorder } from '../helpers/signals.js';
import type { Client } from 'graphql-ws';
import { metricValue } from '../helpers/metrics.js';
import { PrivateRedis, findRedisServer } from '../helpers/private-redis.js';
import { stackName } from '../helpers/services.js';

/**
 * Acceptance (reliability issue, Redis faults): Redis killed → the gateway keeps serving, cache and
 * events fall back to in-process with readiness `degraded` (still 200); Redis back → the connections
 * recover by themselves and events cross instances again, no restart. A private redis-server is
 * started, killed and restarted by this test (never the machine's).
 */
const logger = createLogger({ level: 'silent', format: 'json' });
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA'];
const binary = findRedisServer();

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The first event on `topic` of `bus`, or undefined after `timeoutMs`. */
async function firstEvent(iterable: AsyncIterable<unknown>, timeoutMs: number): Promise<unknown> {
  const iterator = iterable[Symbol.asyncIterator]();
  const timer = setTimeout(() => void iterator.return?.(), timeoutMs);
  try {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  } finally {
    clearTimeout(timer);
    await iterator.return?.();
  }
}

async function readiness(url: string) {
  const response = await fetch(`${url}/health/ready`);
  const body = (await response.json()) as { status: string; components: Array<{ name: string; status: string }> };
  return { code: response.status, status: body.status, redis: body.components.find((c) => c.name === 'redis')?.status };
}

describe(
  `a Redis outage and recovery (private redis-server; database ${stackName.split('+')[0]})`,
  { skip: binary ? false : 'no redis-server binary' },
  () => {
    let redis: PrivateRedis;
    let server: TestGateway;
    let other: RedisConnections;
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);

    before(async () => {
      process.on('unhandledRejection', onRejection);
      redis = new PrivateRedis(binary!);
      await redis.start();
      server = await startTestGateway({ REDIS_URL: redis.url, SYNTHETIC_TICK_MS: '0', MARKET_CACHE_TTL_MS: '60000' });
      other = await connectRedis({ url: redis.url, logger });
    });
    after(async () => {
      await server?.close();
      await other?.close();
      await redis?.kill();
      process.off('unhandledRejection', onRejection);
    });

    test(
      'down: still serving, in-process cache and events, readiness degraded; back: shared again without a restart',
      { timeout: 60_000 },
      async () => {
        const prefix = server.gateway.config.keyPrefix;
        const otherBus = createRedisEventBus({ publisher: other.publisher, subscriber: other.subscriber, keyPrefix: prefix });
        const { events } = server.gateway;
        assert.equal(events.engine, 'redis');

        // Before: events cross to another instance's connections.
        const crossed = firstEvent(otherBus.subscribe('probe'), 3_000);
        await new Promise((resolve) => setTimeout(resolve, 100)); // SUBSCRIBE is asynchronous
        events.publish('probe', { phase: 'before' });
        assert.deepEqual(await crossed, { phase: 'before' });
        assert.deepEqual(await readiness(server.url), { code: 200, status: 'ok', redis: 'ok' });

        await redis.kill();
        await waitFor('the gateway to notice', async () => ((await readiness(server.url)).redis === 'degraded' ? true : undefined), 10_000);

        // Serving goes on; readiness stays 200 with redis degraded.
        const during = await execute(server.url, PredictionsDocument, { symbols: SYMBOLS });
        assert.equal(during.errors, undefined, JSON.stringify(during.errors));
        assert.deepEqual(await readiness(server.url), { code: 200, status: 'degraded', redis: 'degraded' });

        // The in-process cache answers meanwhile: a repeat of the same request hits it.
        const hitsBefore = await metricValue(server.url, 'sibyl_cache_requests_total{tier="market",result="hit"}');
        await execute(server.url, PredictionsDocument, { symbols: SYMBOLS });
        assert.ok(
          (await metricValue(server.url, 'sibyl_cache_requests_total{tier="market",result="hit"}')) >= hitsBefore + SYMBOLS.length,
          'market bars came from the fallback cache',
        );

        // Events still reach this instance's own subscribers.
        const local = firstEvent(events.subscribe('probe-local'), 3_000);
        await new Promise((resolve) => setImmediate(resolve));
        events.publish('probe-local', { phase: 'during', at: new Date('2024-01-02T00:00:00Z') });
        assert.deepEqual(await local, { phase: 'during', at: new Date('2024-01-02T00:00:00Z') });

        await redis.start(); // same port
        await waitFor('readiness ok again', async () => ((await readiness(server.url)).redis === 'ok' ? true : undefined), 20_000);
        // The other instance's connections reconnect too; then events cross again.
        await waitFor(
          'the other instance to reconnect',
          async () => (other.subscriber.status === 'ready' && other.publisher.status === 'ready' ? true : undefined),
          20_000,
        );
        const after = firstEvent(otherBus.subscribe('probe-after'), 5_000);
        await new Promise((resolve) => setTimeout(resolve, 200));
        events.publish('probe-after', { phase: 'after' });
        assert.deepEqual(await after, { phase: 'after' });
        const served = await execute(server.url, PredictionsDocument, { symbols: SYMBOLS });
        assert.equal(served.errors, undefined);
        assert.deepEqual(rejections, [], 'no unhandled rejection');
      },
    );
  },
);

describe(
  `live signals through a Redis outage (private redis-server; database ${stackName.split('+')[0]})`,
  { skip: binary ? false : 'no redis-server binary' },
  () => {
    let redis: PrivateRedis;
    let server: TestGateway;
    let client: Client;

    before(async () => {
      redis = new PrivateRedis(binary!);
      await redis.start();
      // Ticks every 150 ms; a short lease so the monitor's reaction to the outage fits a test.
      server = await startTestGateway({ REDIS_URL: redis.url, SYNTHETIC_TICK_MS: '150', SIGNALS_LEASE_MS: '600' });
      client = wsClient(server.url);
    });
    after(async () => {
      await client?.dispose();
      await server?.close();
      await redis?.kill();
    });

    test(
      'Redis down: the instance runs the monitor alone and its subscribers keep receiving; Redis back: shared again',
      { timeout: 60_000 },
      async () => {
        const recorder = new SignalRecorder(client, { symbols: ['AAPL', 'MSFT'] });
        await recorder.until((r) => r.ticks().length >= 2, 10_000, 'signals before the outage');

        await redis.kill();
        const downAt = recorder.ticks().length;
        // The held lease cannot be renewed, and without aloneWhenUnreachable the monitor would step down
        // after the TTL and no instance would compute signals until Redis came back.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const afterTtl = recorder.ticks().length;
        await recorder.until((r) => r.ticks().length >= afterTtl + 3, 10_000, 'signals while Redis is down');
        assert.ok(afterTtl > downAt, 'signals kept coming right after the cut too');
        assert.equal(server.gateway.signals.monitor.running, true);

        await redis.start();
        await waitFor('readiness ok again', async () => ((await readiness(server.url)).redis === 'ok' ? true : undefined), 20_000);
        const back = recorder.ticks().length;
        await recorder.until((r) => r.ticks().length >= back + 3, 10_000, 'signals after Redis is back');
        const ticks = recorder.ticks();
        assert.deepEqual([...ticks].sort(), ticks, 'in order');
        assert.equal(recorder.errors, undefined);
        recorder.dispose();
      },
    );
  },
);
