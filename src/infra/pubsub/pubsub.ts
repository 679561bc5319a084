import { createPubSub, type PubSub as YogaPubSub } from '@graphql-yoga/subscription';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Redis } from 'ioredis';
import { dateSafeJson } from '../../shared/date-safe-json.js';

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

export function createRedisEventBus(options: { publisher: Redis; subscriber: Redis; keyPrefix: string }): EventBus {
  const eventTarget = createRedisEventTarget<CustomEvent>({
    publishClient: options.publisher,
    subscribeClient: options.subscriber,
    serializer: dateSafeJson,
  });
  return prefixed('redis', createPubSub<AnyTopics>({ eventTarget }), options.keyPrefix);
}

function prefixed(engine: EventBus['engine'], pubsub: YogaPubSub<AnyTopics>, keyPrefix: string): EventBus {
  const channel = (topic: string) => `${keyPrefix}events:${topic}`;
  return {
    engine,
    publish: (topic, payload) => pubsub.publish(channel(topic), payload),
    subscribe: (topic) => pubsub.subscribe(channel(topic)),
  };
}
