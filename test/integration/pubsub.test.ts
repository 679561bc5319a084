import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from '../../src/infra/pubsub/pubsub.js';
import { connectRedis } from '../../src/infra/redis/redis.js';
import { realRedisUrl, testRedisEnv } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });

/** Takes the next `count` events of a subscription, or fails after `timeoutMs`. */
async function take(iterable: AsyncIterable<unknown>, count: number, timeoutMs = 3_000): Promise<unknown[]> {
  const iterator = iterable[Symbol.asyncIterator]();
  const received: unknown[] = [];
  const deadline = setTimeout(() => void iterator.return?.(), timeoutMs);
  try {
    while (received.length < count) {
      const next = await iterator.next();
      if (next.done) break;
      received.push(next.value);
    }
  } finally {
    clearTimeout(deadline);
    await iterator.return?.();
  }
  return received;
}

interface PairInstance {
  a: EventBus;
  b: EventBus;
  /** Resolves once a subscription to `topic` is live (Redis SUBSCRIBE is asynchronous). */
  subscribed(topic: string): Promise<void>;
  close(): Promise<void>;
}
type Pair = { name: string; needs?: string | undefined; make(): Promise<PairInstance> };

const pairs: Pair[] = [
  {
    name: 'memory (one instance)',
    async make() {
      const bus = createMemoryEventBus({ keyPrefix: 't:' });
      return { a: bus, b: bus, subscribed: async () => undefined, close: async () => undefined };
    },
  },
  {
    name: 'redis (two instances)',
    needs: realRedisUrl ? undefined : 'needs REDIS_URL',
    async make() {
      const keyPrefix = testRedisEnv().REDIS_KEY_PREFIX!;
      const [ra, rb] = await Promise.all([connectRedis({ url: realRedisUrl!, logger }), connectRedis({ url: realRedisUrl!, logger })]);
      return {
        a: createRedisEventBus({ publisher: ra.publisher, subscriber: ra.subscriber, keyPrefix }),
        b: createRedisEventBus({ publisher: rb.publisher, subscriber: rb.subscriber, keyPrefix }),
        async subscribed(topic) {
          const channel = `${keyPrefix}events:${topic}`;
          for (let i = 0; i < 100; i++) {
            const [, count] = (await ra.command.pubsub('NUMSUB', channel)) as [string, number];
            if (Number(count) > 0) return;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          throw new Error(`no subscriber on ${channel} after 1 s`);
        },
        close: async () => {
          await Promise.all([ra.close(), rb.close()]);
        },
      };
    },
  },
];

for (const pair of pairs) {
  describe(`event bus: ${pair.name}`, { skip: pair.needs ?? false }, () => {
    test('a subscriber receives what is published on its topic, in order, with Dates intact', async () => {
      const { a, b, subscribed, close } = await pair.make();
      try {
        const payloads = [
          { n: 1, at: new Date('2021-04-21T00:00:00Z') },
          { n: 2, at: new Date('2021-04-22T00:00:00Z') },
        ];
        const received = take(b.subscribe('signals:AAPL'), 2);
        await subscribed('signals:AAPL');
        for (const p of payloads) a.publish('signals:AAPL', p);
        assert.deepEqual(await received, payloads);
      } finally {
        await close();
      }
    });

    test('events on other topics are not delivered', async () => {
      const { a, b, subscribed, close } = await pair.make();
      try {
        const received = take(b.subscribe('signals:MSFT'), 1);
        await subscribed('signals:MSFT');
        a.publish('signals:AAPL', { wrong: true });
        a.publish('signals:MSFT', { right: true });
        assert.deepEqual(await received, [{ right: true }]);
      } finally {
        await close();
      }
    });
  });
}
