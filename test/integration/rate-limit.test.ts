import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createRateLimiter } from '../../src/infra/limits/rate-limiter.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { realRedisUrl, stackName, testRedisEnv } from '../helpers/services.js';

const CHEAP = '{ strategies { name } }'; // cost 2

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('rate limiter engines', () => {
  test('in memory: a budget of points per key per window; other keys are not charged', async () => {
    const limiter = createRateLimiter({ points: 25, windowSeconds: 60, keyPrefix: 't:' });
    assert.equal((await limiter.consume('a', 10)).remaining, 15);
    assert.equal((await limiter.consume('a', 10)).allowed, true);
    const refused = await limiter.consume('a', 10);
    assert.equal(refused.allowed, false);
    assert.ok(refused.resetSeconds >= 1 && refused.resetSeconds <= 60);
    assert.equal((await limiter.consume('b', 10)).allowed, true);
  });

  test('Redis unreachable: the in-memory insurance limiter holds the same limits, without failing calls', async () => {
    const port = await freePort(); // nothing listens there
    const redis = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      const limiter = createRateLimiter({ points: 25, windowSeconds: 60, keyPrefix: 't:', redis });
      assert.equal(limiter.engine, 'redis');
      assert.equal((await limiter.consume('a', 10)).allowed, true);
      assert.equal((await limiter.consume('a', 10)).allowed, true);
      assert.equal((await limiter.consume('a', 10)).allowed, false);
    } finally {
      redis.disconnect();
    }
  });

  test('real Redis: instances share one budget', { skip: realRedisUrl ? false : 'REDIS_URL not set' }, async () => {
    const { REDIS_KEY_PREFIX: keyPrefix } = testRedisEnv();
    const a = new Redis(realRedisUrl!, { enableOfflineQueue: false, lazyConnect: true });
    const b = new Redis(realRedisUrl!, { enableOfflineQueue: false, lazyConnect: true });
    try {
      await Promise.all([a.connect(), b.connect()]);
      const one = createRateLimiter({ points: 25, windowSeconds: 60, keyPrefix: keyPrefix!, redis: a });
      const two = createRateLimiter({ points: 25, windowSeconds: 60, keyPrefix: keyPrefix!, redis: b });
      assert.equal((await one.consume('k', 10)).allowed, true);
      assert.equal((await two.consume('k', 10)).allowed, true);
      assert.equal((await one.consume('k', 10)).allowed, false);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });
});

describe(`rate limiting charged by cost, HTTP and WebSocket (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({ RATE_LIMIT_POINTS: '20', RATE_LIMIT_WINDOW_S: '60' });
  });
  after(async () => server.close());

  test('past the budget: RATE_LIMITED with retryAfterSeconds, HTTP 429 with Retry-After and RateLimit headers; WS too', async () => {
    const first = await postQuery(server.url, CHEAP);
    assert.equal(first.errors, undefined);
    assert.equal(first.headers.get('ratelimit-limit'), '20');
    assert.equal(first.headers.get('ratelimit-remaining'), '18');
    let refused;
    for (let i = 0; i < 20 && !refused; i++) {
      const response = await postQuery(server.url, CHEAP);
      if (response.errors) refused = response;
    }
    assert.ok(refused, 'never refused');
    assert.equal(refused.status, 429);
    assert.equal(refused.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
    const retryAfter = refused.errors?.[0]?.extensions?.retryAfterSeconds;
    assert.ok(typeof retryAfter === 'number' && retryAfter >= 1 && retryAfter <= 60);
    assert.equal(refused.headers.get('retry-after'), String(retryAfter));
    assert.equal(refused.headers.get('ratelimit-remaining'), '0');

    const client = wsClient(server.url);
    try {
      const ws = await wsExecute(client, CHEAP);
      assert.equal(ws.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
      assert.equal(typeof ws.errors?.[0]?.extensions?.retryAfterSeconds, 'number');
    } finally {
      await client.dispose();
    }
  });
});

describe('rate limiting while Redis is down (a private redis-server)', () => {
  let redis: ChildProcess | undefined;
  let server: TestGateway | undefined;
  before(async () => {
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
        socket.on('error', () => resolve(false));
      });
      if (up) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    server = await startTestGateway({ REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_POINTS: '20', RATE_LIMIT_WINDOW_S: '60' });
  });
  after(async () => {
    redis?.kill('SIGKILL');
    await server?.close();
  });

  test('the service keeps serving and the limits still hold, in memory', async () => {
    assert.equal((await postQuery(server!.url, CHEAP)).errors, undefined);
    redis!.kill('SIGKILL');
    await new Promise((resolve) => redis!.once('exit', resolve));
    const outcomes: string[] = [];
    for (let i = 0; i < 15; i++) {
      const response = await postQuery(server!.url, CHEAP);
      outcomes.push(response.errors ? String(response.errors[0]?.extensions?.code) : 'ok');
    }
    // The insurance limiter starts its own window when Redis goes: 10 requests of cost 2 fit, then refusals.
    assert.equal(outcomes.filter((o) => o === 'ok').length, 10, outcomes.join(','));
    assert.deepEqual([...new Set(outcomes.slice(10))], ['RATE_LIMITED']);
    const predictions = await postQuery<{ prediction: { symbol: string } }>(
      server!.url,
      '{ prediction(symbol: "MSFT") { symbol } }',
      undefined,
      { 'x-forwarded-for': '10.0.0.1' },
    );
    // Same caller (no proxy trust): refused by the limit, not by an outage.
    assert.equal(predictions.errors?.[0]?.extensions?.code, 'RATE_LIMITED');
  });
});
