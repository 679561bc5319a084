import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLocalInterest, createRedisInterest } from '../../src/infra/coordination/interest.js';
import { createLocalLease, createRedisLease, type Lease } from '../../src/infra/coordination/lease.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { realRedisUrl, testRedisEnv } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const waitFor = async (condition: () => boolean, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('local lease and interest (one process)', () => {
  test('the local lease is held from start to stop', async () => {
    const lease = createLocalLease();
    const changes: boolean[] = [];
    lease.start((held) => changes.push(held));
    assert.equal(lease.held, true);
    await lease.stop();
    assert.deepEqual(changes, [true, false]);
  });

  test('local interest counts subscribers per member', async () => {
    const interest = createLocalInterest();
    interest.add(['s|A', 's|B']);
    interest.add(['s|A']);
    interest.remove(['s|A', 's|B']);
    assert.deepEqual(await interest.all(), ['s|A']);
    interest.remove(['s|A']);
    assert.deepEqual(await interest.all(), []);
  });
});

describe('Redis lease and interest (several instances)', { skip: !realRedisUrl && 'needs REDIS_URL' }, () => {
  let redis: RedisConnections;
  let prefix: string;
  before(async () => {
    redis = await connectRedis({ url: realRedisUrl!, logger });
    prefix = testRedisEnv().REDIS_KEY_PREFIX!;
  });
  after(async () => redis.close());

  test('one holder at a time; a graceful stop hands over at the next attempt; a dead holder is replaced after its TTL', async () => {
    const key = `${prefix}lease`;
    const ttlMs = 600;
    const make = () => createRedisLease({ redis: redis.command, key, ttlMs, logger });
    const a = make();
    const b = make();
    a.start(() => undefined);
    await waitFor(() => a.held, 2_000, 'a to acquire');
    b.start(() => undefined);
    await new Promise((r) => setTimeout(r, ttlMs * 2));
    assert.equal(b.held, false, 'b cannot acquire while a renews');
    await a.stop();
    assert.equal(await redis.command.get(key), null, 'stop released the key');
    await waitFor(() => b.held, ttlMs, 'b to take over after a released');

    // A holder that vanishes without releasing: simulate by stopping b's loop but leaving its key.
    const c = make();
    c.start(() => undefined);
    const token = await redis.command.get(key);
    await b.stop(); // releases…
    await redis.command.set(key, token!, 'PX', ttlMs); // …so put a dead holder's key back
    const started = Date.now();
    await waitFor(() => c.held, ttlMs * 3, 'c to take over after the TTL');
    assert.ok(Date.now() - started >= ttlMs * 0.5, 'not before the dead holder’s key expired');
    await c.stop();
  });

  test('a holder that cannot renew steps down before its key could expire', async () => {
    let failing = false;
    const changes: Array<[boolean, number]> = [];
    const flaky = {
      set: (...args: Parameters<RedisConnections['command']['set']>) =>
        failing ? Promise.reject(new Error('down')) : redis.command.set(...args),
      eval: (...args: Parameters<RedisConnections['command']['eval']>) =>
        failing ? Promise.reject(new Error('down')) : redis.command.eval(...args),
    } as unknown as RedisConnections['command'];
    const lease: Lease = createRedisLease({ redis: flaky, key: `${prefix}flaky`, ttlMs: 600, logger });
    lease.start((held) => changes.push([held, Date.now()]));
    await waitFor(() => lease.held, 2_000, 'acquire');
    failing = true;
    const failedAt = Date.now();
    await waitFor(() => !lease.held, 2_000, 'stepping down');
    assert.ok(changes.at(-1)![1] - failedAt <= 600 + 50, 'stepped down within the TTL');
    failing = false;
    await lease.stop();
  });

  test('aloneWhenUnreachable: cut off from Redis for the TTL it runs alone; when Redis answers it contends again', async (t) => {
    const key = `${prefix}alone`;
    const ttlMs = 450;
    let failing = false;
    const flaky = {
      set: (...args: Parameters<RedisConnections['command']['set']>) =>
        failing ? Promise.reject(new Error('down')) : redis.command.set(...args),
      eval: (...args: Parameters<RedisConnections['command']['eval']>) =>
        failing ? Promise.reject(new Error('down')) : redis.command.eval(...args),
    } as unknown as RedisConnections['command'];
    const holder = createRedisLease({ redis: redis.command, key, ttlMs, logger });
    const changes: boolean[] = [];
    const cutOff = createRedisLease({ redis: flaky, key, ttlMs, logger, aloneWhenUnreachable: true });
    t.after(async () => {
      failing = false;
      await Promise.all([holder.stop(), cutOff.stop()]);
    });
    holder.start(() => undefined);
    await waitFor(() => holder.held, 2_000, 'the holder to acquire');
    cutOff.start((held) => changes.push(held));
    await new Promise((r) => setTimeout(r, ttlMs));
    assert.equal(cutOff.held, false, 'while Redis answers, the shared holder keeps the lease');

    failing = true;
    const failedAt = Date.now();
    await waitFor(() => cutOff.held, ttlMs * 3, 'running alone');
    // Silence counts from the last answered request, sent up to one period (ttl / 3) before the cut.
    assert.ok(Date.now() - failedAt >= (ttlMs * 2) / 3 - 20, 'not before Redis was silent for the TTL');
    assert.equal(cutOff.alone, true);
    assert.equal(holder.held, true, 'the instance that still reaches Redis keeps the shared lease');

    failing = false;
    await waitFor(() => !cutOff.held, ttlMs * 2, 'stepping down once Redis answers and the key is taken');
    assert.equal(cutOff.alone, false);
    assert.deepEqual(changes, [true, false]);

    // A holder cut off from Redis stays held, without a flip, and keeps the key once Redis answers.
    await holder.stop();
    await waitFor(() => cutOff.held, ttlMs * 2, 'the cut-off lease to take over the shared key');
    failing = true;
    await new Promise((r) => setTimeout(r, ttlMs * 2));
    assert.equal(cutOff.held, true);
    assert.equal(cutOff.alone, true);
    await redis.command.del(key); // its key expired meanwhile in real life too
    failing = false;
    await waitFor(() => cutOff.alone === false, ttlMs * 2, 'back to the shared lease');
    assert.equal(cutOff.held, true, 'the free key is acquired again without stepping down');
    assert.deepEqual(changes, [true, false, true]);
  });

  test('interest is shared between instances and lapses once no instance refreshes it', async () => {
    const key = `${prefix}interest`;
    const one = createRedisInterest({ redis: redis.command, key, refreshMs: 100, logger });
    const two = createRedisInterest({ redis: redis.command, key, refreshMs: 100, logger });
    one.start();
    two.start();
    one.add(['s|A']);
    two.add(['s|B', 's|A']);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await one.all(), ['s|A', 's|B']);
    two.remove(['s|B', 's|A']);
    await two.stop();
    // B was only two's: it stops being refreshed and expires (3 periods); A is still one's.
    await new Promise((r) => setTimeout(r, 450));
    assert.deepEqual(await one.all(), ['s|A']);
    await one.stop();
  });
});
