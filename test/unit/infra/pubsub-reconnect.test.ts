import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createRedisEventBus } from '../../../src/infra/pubsub/pubsub.js';

/**
 * The Redis event bus while its two connections come back from an outage on their own schedules:
 * an event published while this instance's subscriber connection is not (yet) back must still reach
 * this instance's subscribers, once. Fake connections, so the order of reconnection is the test's.
 */
function connections() {
  const published: string[] = [];
  let failPublish = false;
  const publisher = {
    status: 'ready',
    publish: async (channel: string) => {
      if (failPublish) throw new Error('Connection is closed.');
      published.push(channel);
      return 0;
    },
  };
  const subscriber = Object.assign(new EventEmitter(), {
    status: 'ready',
    subscribe: async () => 1,
    unsubscribe: async () => 0,
  });
  const bus = createRedisEventBus({
    publisher: publisher as unknown as Redis,
    subscriber: subscriber as unknown as Redis,
    keyPrefix: 't:',
  });
  return { bus, publisher, subscriber, published, failPublish: (fail: boolean) => (failPublish = fail) };
}

/** Everything delivered to a subscription of `topic` within 20 ms of `act`. */
async function collect(bus: ReturnType<typeof connections>['bus'], topic: string, act: () => void): Promise<unknown[]> {
  const iterator = bus.subscribe(topic)[Symbol.asyncIterator]();
  const got: unknown[] = [];
  const pump = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      got.push(next.value);
    }
  })();
  act();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await iterator.return?.();
  await pump;
  return got;
}

describe('Redis event bus while reconnecting', () => {
  test('publisher back before the subscriber: the event goes to Redis for the others and to this instance directly', async () => {
    const c = connections();
    c.subscriber.status = 'reconnecting';
    const got = await collect(c.bus, 'x', () => c.bus.publish('x', { n: 1 }));
    assert.deepEqual(got, [{ n: 1 }]);
    assert.deepEqual(c.published, ['t:events:x']);
  });

  test('both back: delivered only through Redis (the message coming back is the delivery)', async () => {
    const c = connections();
    const got = await collect(c.bus, 'x', () => {
      c.bus.publish('x', { n: 2 });
      c.subscriber.emit('message', 't:events:x', JSON.stringify({ n: 2 }));
    });
    assert.deepEqual(got, [{ n: 2 }]);
  });

  test('subscriber not back and the publish fails: delivered here once, not twice', async () => {
    const c = connections();
    c.subscriber.status = 'connecting';
    c.failPublish(true);
    const got = await collect(c.bus, 'x', () => c.bus.publish('x', { n: 3 }));
    assert.deepEqual(got, [{ n: 3 }]);
  });

  test('publisher down: delivered here only', async () => {
    const c = connections();
    c.publisher.status = 'reconnecting';
    const got = await collect(c.bus, 'x', () => c.bus.publish('x', { n: 4 }));
    assert.deepEqual(got, [{ n: 4 }]);
    assert.deepEqual(c.published, []);
  });
});
