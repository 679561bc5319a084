import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Cache } from '../../src/infra/cache/cache.js';
import { createMemoryCache } from '../../src/infra/cache/memory.js';
import { createRedisCache } from '../../src/infra/cache/redis.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { realRedisUrl, testRedisEnv } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const engines: Array<{ name: string; needs?: string; make: () => Promise<{ cache: Cache; close(): Promise<void> }> }> = [
  { name: 'memory', make: async () => ({ cache: createMemoryCache(), close: async () => undefined }) },
  {
    name: 'redis',
    needs: realRedisUrl ? undefined : 'needs REDIS_URL',
    make: async () => {
      const redis: RedisConnections = await connectRedis({ url: realRedisUrl!, logger });
      return {
        cache: createRedisCache({ redis: redis.command, keyPrefix: testRedisEnv().REDIS_KEY_PREFIX!, logger }),
        close: () => redis.close(),
      };
    },
  },
];

for (const engine of engines) {
  describe(`cache: ${engine.name}`, { skip: engine.needs ?? false }, () => {
    let subject: { cache: Cache; close(): Promise<void> } | undefined;
    const cache = async () => (subject ??= await engine.make()).cache;
    after(async () => subject?.close());

    test('a miss is undefined; a set value is read back', async () => {
      const c = await cache();
      assert.equal(c.engine, engine.name);
      assert.equal(await c.get('absent'), undefined);
      await c.set('k1', 'v1', 10_000);
      assert.equal(await c.get('k1'), 'v1');
    });

    test('getMany answers every key in order, hits and misses', async () => {
      const c = await cache();
      await c.setMany(
        [
          { key: 'm1', value: 'one' },
          { key: 'm3', value: 'three' },
        ],
        10_000,
      );
      assert.deepEqual(await c.getMany(['m1', 'm2', 'm3']), ['one', undefined, 'three']);
      assert.deepEqual(await c.getMany([]), []);
    });

    test('entries expire after their TTL', async () => {
      const c = await cache();
      await c.set('short', 'x', 40);
      assert.equal(await c.get('short'), 'x');
      await sleep(120);
      assert.equal(await c.get('short'), undefined);
    });

    test('delete removes an entry', async () => {
      const c = await cache();
      await c.set('d', 'x', 10_000);
      await c.delete('d');
      assert.equal(await c.get('d'), undefined);
    });
  });
}

describe('cache: redis prefixes', { skip: realRedisUrl ? false : 'needs REDIS_URL' }, () => {
  test('two deployments with different prefixes never see each other’s entries', async () => {
    const redis = await connectRedis({ url: realRedisUrl!, logger });
    try {
      const a = createRedisCache({ redis: redis.command, keyPrefix: testRedisEnv().REDIS_KEY_PREFIX!, logger });
      const b = createRedisCache({ redis: redis.command, keyPrefix: testRedisEnv().REDIS_KEY_PREFIX!, logger });
      await a.set('shared-name', 'from-a', 10_000);
      assert.equal(await b.get('shared-name'), undefined);
    } finally {
      await redis.close();
    }
  });
});
