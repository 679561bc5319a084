import { createPubSub, type PubSub as YogaPubSub } from '@graphql-yoga/subscription';
import type { Redis } from 'ioredis';
import { dateSafeJson } from '../../shared/date-safe-json.js';
import type { Logger } from '../logger/logger.js';

/**
 * Events between the parts of Sibyl, and between instances when Redis is configured. The shape is
 * the one type-graphql's subscriptions consume (`publish(topic, payload)`, `subscribe(topic)`), so
 * the same bus feeds GraphQL subscriptions and internal listeners.
 *
 * Engines: in-process (an EventTarget) or Redis pub/sub, where every instance receives every event
 * published by any of them. Topic names are prefixed with the deployment's key prefix.
 */
export interface EventBus {
  readonly engine: 'memory' | 'redis';
  publish(topic: string, payload: unknown): void;
  subscribe(topic: string): AsyncIterable<unknown>;
}

type AnyTopics = Record<string, [unknown]>;

export function createMemoryEventBus(options: { keyPrefix: string }): EventBus {
  return prefixed('memory', createPubSub<AnyTopics>(), options.keyPrefix);
}

/**
 * Redis pub/sub, with this instance's subscribers fed from an in-process bus: a message arriving on a
 * subscribed channel is delivered locally, and a publish that cannot reach Redis (disconnected, or the
 * command failed) is delivered locally instead of being lost. So while Redis is down every instance
 * keeps serving its own subscribers from its own events, and when Redis is back (ioredis reconnects
 * and re-subscribes by itself) events cross instances again, with no restart.
 *
 * Hand-rolled rather than `@graphql-yoga/redis-event-target`: that target publishes without awaiting,
 * so a publish during an outage becomes an unhandled rejection and the event is silently dropped.
 *
 * A publish whose connection drops after Redis took the message but before the reply may be
 * delivered twice on this instance (once from Redis, once locally); payloads should be idempotent
 * for their consumers (signals carry their key).
 */
export function createRedisEventBus(options: { publisher: Redis; subscriber: Redis; keyPrefix: string; logger?: Logger }): EventBus {
  const { publisher, subscriber, keyPrefix } = options;
  const local = createPubSub<AnyTopics>();
  const channel = (topic: string) => `${keyPrefix}events:${topic}`;
  /** Subscriptions of this instance per channel: Redis SUBSCRIBE on the first, UNSUBSCRIBE after the last. */
  const listeners = new Map<string, number>();
  let lastWarned = 0;
  const warn = (message: string, error?: unknown) => {
    const now = Date.now();
    if (now - lastWarned < 10_000) return;
    lastWarned = now;
    options.logger?.warn({ err: error }, message);
  };
  const deliverLocally = (name: string, text: string) => {
    if (listeners.has(name)) local.publish(name, dateSafeJson.parse(text));
  };

  subscriber.on('message', (name: string, text: string) => {
    try {
      deliverLocally(name, text);
    } catch (error) {
      warn(`dropped an unreadable event on ${name}`, error);
    }
  });

  const acquire = (name: string) => {
    const count = listeners.get(name) ?? 0;
    listeners.set(name, count + 1);
    // The subscriber queues commands while disconnected and re-subscribes on reconnect by itself.
    if (count === 0) subscriber.subscribe(name).catch((error: unknown) => warn(`redis SUBSCRIBE ${name} failed`, error));
  };
  const release = (name: string) => {
    const count = (listeners.get(name) ?? 1) - 1;
    if (count > 0) return void listeners.set(name, count);
    listeners.delete(name);
    subscriber.unsubscribe(name).catch((error: unknown) => warn(`redis UNSUBSCRIBE ${name} failed`, error));
  };

  return {
    engine: 'redis',
    publish(topic, payload) {
      const name = channel(topic);
      const text = dateSafeJson.stringify(payload);
      if (publisher.status !== 'ready') {
        warn('redis unavailable: events reach this instance only');
        deliverLocally(name, text);
        return;
      }
      // The two connections reconnect on their own schedules: until this instance's subscriber is back
      // (and re-subscribed, which ioredis does as it becomes ready), Redis cannot bring the event back
      // here, so it is delivered here directly too. Should it also come back, consumers drop the repeat.
      const delivered = subscriber.status !== 'ready';
      if (delivered) deliverLocally(name, text);
      publisher.publish(name, text).catch((error: unknown) => {
        warn('redis PUBLISH failed: events reach this instance only', error);
        if (!delivered) deliverLocally(name, text);
      });
    },
    subscribe(topic) {
      const name = channel(topic);
      return {
        [Symbol.asyncIterator]() {
          // Registered locally before Redis confirms the SUBSCRIBE, so nothing delivered after this point is missed here.
          const iterator = local.subscribe(name)[Symbol.asyncIterator]();
          acquire(name);
          let released = false;
          const done = () => {
            if (!released) {
              released = true;
              release(name);
            }
          };
          return {
            async next() {
              const result = await iterator.next();
              if (result.done) done();
              return result;
            },
            async return(value?: unknown) {
              done();
              return (await iterator.return?.(value)) ?? { done: true, value: undefined };
            },
            async throw(error?: unknown) {
              done();
              if (iterator.throw) return iterator.throw(error);
              throw error;
            },
          };
        },
      };
    },
  };
}

function prefixed(engine: EventBus['engine'], pubsub: YogaPubSub<AnyTopics>, keyPrefix: string): EventBus {
  const channel = (topic: string) => `${keyPrefix}events:${topic}`;
  return {
    engine,
    publish: (topic, payload) => pubsub.publish(channel(topic), payload),
    subscribe: (topic) => pubsub.subscribe(channel(topic)),
  };
}
