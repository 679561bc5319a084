import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger/logger.js';
import type { InputName } from './inputs.js';
import type { ResponseCache } from './response-cache.js';

export interface SharedInvalidationsOptions {
  readonly cache: Pick<ResponseCache, 'versions' | 'setAvailable' | 'available'>;
  readonly publisher: Redis;
  /** A connection in subscriber mode (shared with the event bus: this adds its own channel and listener). */
  readonly subscriber: Redis;
  /** {@link invalidationsChannel}. */
  readonly channel: string;
  readonly logger: Logger;
  /** How often the round trip through Redis is proven (default 1 s). */
  readonly probeEveryMs?: number;
  /** How long a probe may take before the cache stops serving (default 1 s). */
  readonly probeTimeoutMs?: number;
}

/** On the wire: who sent it, and what changed (inputs, or everything), or a probe of the round trip. */
interface Message {
  readonly o: string;
  readonly i?: readonly string[];
  readonly a?: 1;
  readonly p?: string;
}

/** The channel every instance of a deployment listens on: `<REDIS_KEY_PREFIX>response-cache`. */
export const invalidationsChannel = (keyPrefix: string): string => `${keyPrefix}response-cache`;

/**
 * Tells every running instance's response cache that `inputs` changed, from a process that has no
 * cache of its own (a CLI that wrote bars or outcomes). Resolves with how many instances heard it.
 */
export async function announceChanges(publisher: Pick<Redis, 'publish'>, keyPrefix: string, inputs: readonly InputName[]): Promise<number> {
  if (inputs.length === 0) return 0;
  const message: Message = { o: `announce:${randomUUID()}`, i: inputs };
  return publisher.publish(invalidationsChannel(keyPrefix), JSON.stringify(message));
}

/**
 * Every instance's changes reach every other instance's response cache through one Redis pub/sub
 * channel, and the cache serves only while this instance provably receives them (fail closed).
 *
 * - A change made here (`origin: 'local'`) is applied here at once and published; a change published by
 *   another instance is applied here as it arrives (`'remote'`, not published again).
 * - The cache is available only after a probe published here has come back through Redis on the
 *   subscriber: that proves both connections work and the channel is subscribed (ioredis re-subscribes
 *   by itself after a reconnect, so a ready connection alone proves nothing). Probes repeat every
 *   `probeEveryMs` while serving, so a connection that died silently is noticed within
 *   probeEveryMs + probeTimeoutMs.
 * - Either connection closing, a probe not back in time, or a change that could not be published turns
 *   serving off at once. When a probe comes back again, the cache drops everything (changes announced
 *   meanwhile were missed here) and serves again; if a change made here could not be published, it
 *   first publishes that everything changed (the others missed it).
 *
 * What this cannot see: another instance cut off from Redis but not from the database may write
 * meanwhile, and until it is back its changes reach no one (docs/decisions/response-cache.md).
 */
export function shareInvalidations(options: SharedInvalidationsOptions): { close(): Promise<void> } {
  const { cache, publisher, subscriber, channel, logger } = options;
  const probeEveryMs = options.probeEveryMs ?? 1_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 1_000;
  const origin = randomUUID();
  let closed = false;
  let pendingProbe: { nonce: string; arrived: () => void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** A change made here could not be published: the others must be told that everything changed. */
  let owed = false;

  const stopServing = (why: string) => {
    if (!cache.available) return;
    cache.setAvailable(false);
    logger.warn({ why }, 'response cache off until invalidations from other instances arrive again');
  };

  const send = (message: Message): Promise<unknown> => {
    if (publisher.status !== 'ready') return Promise.reject(new Error(`publisher ${publisher.status}`));
    return publisher.publish(channel, JSON.stringify(message));
  };

  const onMessage = (from: string, text: string) => {
    if (from !== channel) return;
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      logger.warn('response cache: dropped an unreadable invalidation; dropping every cached answer instead');
      cache.versions.changedAll('remote');
      return;
    }
    if (message.o === origin) {
      if (message.p !== undefined && pendingProbe?.nonce === message.p) pendingProbe.arrived();
      return;
    }
    if (message.p !== undefined) return;
    if (message.a === 1) cache.versions.changedAll('remote');
    else if (Array.isArray(message.i))
      cache.versions.changed(
        message.i.filter((x): x is string => typeof x === 'string'),
        'remote',
      );
  };
  subscriber.on('message', onMessage);
  const onDown = () => stopServing('a redis connection closed');
  subscriber.on('close', onDown);
  publisher.on('close', onDown);

  const unlisten = cache.versions.onChange((change, from) => {
    if (from !== 'local') return;
    const message: Message = 'all' in change ? { o: origin, a: 1 } : { o: origin, i: change.inputs };
    send(message).catch((error: unknown) => {
      // Applied here already; the others missed it: they are told that everything changed once Redis
      // answers again. Until then this instance cannot count on hearing from them either.
      owed = true;
      stopServing(`could not publish an invalidation (${(error as Error).message})`);
    });
  });

  /** One round trip through Redis: resolves true when the probe came back in time. */
  const probe = async (): Promise<boolean> => {
    if (subscriber.status !== 'ready' || publisher.status !== 'ready') return false;
    const nonce = randomUUID();
    const back = new Promise<boolean>((resolve) => {
      const timeout = setTimeout(() => resolve(false), probeTimeoutMs);
      pendingProbe = {
        nonce,
        arrived: () => {
          clearTimeout(timeout);
          resolve(true);
        },
      };
    });
    try {
      await send({ o: origin, p: nonce });
    } catch {
      return false;
    }
    return back;
  };

  const tick = async () => {
    if (closed) return;
    const ok = await probe().catch(() => false);
    if (closed) return;
    if (ok && owed) {
      owed = false;
      await send({ o: origin, a: 1 }).catch(() => void (owed = true));
    }
    if (ok && !owed && !cache.available) {
      cache.setAvailable(true);
      logger.info('response cache serving: invalidations from other instances arrive');
    } else if (!ok) stopServing('a probe of the redis round trip did not come back in time');
    timer = setTimeout(() => void tick(), cache.available ? probeEveryMs : Math.min(probeEveryMs, 250));
    timer.unref();
  };

  // Nothing is served until the first probe has come back.
  cache.setAvailable(false);
  subscriber.subscribe(channel).catch((error: unknown) => logger.warn({ err: error }, `redis SUBSCRIBE ${channel} failed`));
  void tick();

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      unlisten();
      subscriber.off('message', onMessage);
      subscriber.off('close', onDown);
      publisher.off('close', onDown);
      cache.setAvailable(false);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
