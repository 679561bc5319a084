import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/infra/logger/logger.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { HISTORY, barsOf } from '../../src/infra/response-cache/inputs.js';
import { announceChanges, invalidationsChannel, shareInvalidations } from '../../src/infra/response-cache/redis-invalidations.js';
import { createResponseCache, type ResponseCache } from '../../src/infra/response-cache/response-cache.js';
import { PrivateRedis, findRedisServer } from '../helpers/private-redis.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const binary = findRedisServer();
const PREFIX = 'rc-test:';
const PROBE = { probeEveryMs: 100, probeTimeoutMs: 150 };

async function until(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Instance {
  readonly cache: ResponseCache<string>;
  readonly redis: RedisConnections;
  close(): Promise<void>;
}

async function instance(url: string): Promise<Instance> {
  const redis = await connectRedis({ url, logger });
  const cache = createResponseCache<string>({ maxBytes: 1 << 20 });
  const sharing = shareInvalidations({
    cache,
    publisher: redis.publisher,
    subscriber: redis.subscriber,
    channel: invalidationsChannel(PREFIX),
    logger,
    ...PROBE,
  });
  return {
    cache,
    redis,
    async close() {
      await sharing.close();
      await redis.close();
    },
  };
}

const store = (cache: ResponseCache<string>, key: string, inputs: readonly string[]) =>
  cache.store(key, key, key.length, inputs, cache.versions.now());

/**
 * Invalidations between instances through a private redis-server, which the test kills and restarts:
 * a change on one instance evicts what read it on the other; with Redis gone no cache serves (fail
 * closed); back, each drops what it held; an instance that could not publish makes the others drop
 * everything when it can again; a CLI's announcement reaches every instance.
 */
describe('response cache invalidations shared through Redis', { skip: binary ? false : 'no redis-server binary' }, () => {
  let redis: PrivateRedis;
  let a: Instance;
  let b: Instance;

  before(async () => {
    redis = new PrivateRedis(binary!);
    await redis.start();
    a = await instance(redis.url);
    b = await instance(redis.url);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.kill();
  });

  test('nothing is served until a probe has come back; then a change on A evicts what read it on B, and only that', async () => {
    await until('both caches serving', () => a.cache.available && b.cache.available);
    assert.equal(store(b.cache, 'aapl', [barsOf('AAPL')]), 'stored');
    assert.equal(store(b.cache, 'history', [HISTORY]), 'stored');
    const heard: string[] = [];
    const stop = b.cache.versions.onChange((change, origin) =>
      heard.push(`${origin}:${'all' in change ? 'all' : change.inputs.join(',')}`),
    );
    a.cache.versions.changed([barsOf('AAPL')]);
    await until('B evicts aapl', () => b.cache.lookup('aapl') === undefined);
    assert.equal(b.cache.lookup('history'), 'history');
    stop();
    assert.deepEqual(heard, ['remote:bars:AAPL'], 'heard once, as remote (not published again)');
  });

  test('a CLI announcement reaches every instance', async () => {
    assert.equal(store(a.cache, 'h', [HISTORY]), 'stored');
    assert.equal(store(b.cache, 'h', [HISTORY]), 'stored');
    const heard = await announceChanges(a.redis.command, PREFIX, [HISTORY]);
    assert.ok(heard >= 2, `${heard} subscribers`);
    await until('both evict', () => a.cache.lookup('h') === undefined && b.cache.lookup('h') === undefined);
  });

  test('an instance whose publisher is cut cannot tell the others: when it is back they drop everything', async () => {
    assert.equal(store(b.cache, 'kept', [barsOf('MSFT')]), 'stored');
    a.redis.publisher.disconnect();
    await until('A stops serving', () => !a.cache.available);
    // Written on A while cut off: B cannot hear of it.
    a.cache.versions.changed([barsOf('MSFT')]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(b.cache.lookup('kept'), 'kept', 'B did not hear (nothing could reach it)');
    await a.redis.publisher.connect();
    await until('A serving again', () => a.cache.available);
    await until('B dropped everything', () => b.cache.lookup('kept') === undefined);
    assert.ok(b.cache.available, 'B never stopped serving');
  });

  test('Redis gone: no instance serves or stores; back: each serves again, without what it held', async () => {
    await until('both serving', () => a.cache.available && b.cache.available);
    assert.equal(store(a.cache, 'before', [HISTORY]), 'stored');
    await redis.kill();
    await until('both stop serving', () => !a.cache.available && !b.cache.available, 2_000);
    assert.equal(a.cache.lookup('before'), undefined);
    assert.equal(store(a.cache, 'during', [HISTORY]), 'unavailable');
    const during = a.cache.versions.now();
    await redis.start();
    await until('both serve again', () => a.cache.available && b.cache.available, 15_000);
    assert.equal(a.cache.lookup('before'), undefined, 'dropped: changes may have been missed');
    assert.equal(a.cache.store('late', 'late', 4, [], during), 'changed', 'an execution from during the outage stores nothing');
    assert.equal(store(a.cache, 'after', [HISTORY]), 'stored');
    b.cache.versions.changed([HISTORY]);
    await until('invalidations flow again', () => a.cache.lookup('after') === undefined);
  });
});
