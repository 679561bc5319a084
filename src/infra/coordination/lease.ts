import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger/logger.js';

/**
 * "Exactly one instance does this": a lease that at most one holder has at a time, renewed while the
 * holder lives and taken over by another candidate once it stops being renewed.
 *
 * Engines: {@link createLocalLease} (one process, no Redis: always held) and {@link createRedisLease}
 * (`SET key token NX PX ttl` to acquire, a compare-and-PEXPIRE to renew, a compare-and-DEL to
 * release). Why Redis rather than a PostgreSQL advisory lock: an advisory lock lives as long as its
 * session, and a holder cut off by a network partition keeps its session, and the lock, until TCP
 * keep-alives give up (minutes with default settings), so "takeover within 15 s" would depend on
 * kernel timeouts; it would also pin one pooled connection per instance for ever. A Redis key with a
 * TTL expires on time whatever happened to its holder, and scale-out needs Redis anyway (events
 * travel over it). Without Redis there is one instance, and the local lease is all it needs.
 *
 * Timing: candidates try every `ttlMs / 3`; a holder that dies without releasing is replaced within
 * `ttlMs + ttlMs / 3` (13.3 s with the default 10 s). A holder that cannot renew (Redis unreachable)
 * steps down as soon as its last renewal is `ttlMs` old, before anybody else can acquire, so two
 * holders never overlap by its own clock.
 *
 * `aloneWhenUnreachable`: an instance that has had no answer from Redis for `ttlMs` holds the lease
 * on its own ("alone") until Redis answers again, then contends as usual (keeping it if the shared
 * key is free, stepping down if another instance has it). This is for work whose results only this
 * instance's clients can receive while Redis is down anyway (the events bus then delivers locally):
 * without it, a Redis outage would stop that work on every instance. Several instances may be alone
 * at once, so the work must tolerate running twice (signals do: history writes are idempotent).
 * With `sharedReady`, running alone lasts until that also says the results can travel again.
 */
export interface Lease {
  /** True while this instance holds the lease. */
  readonly held: boolean;
  /** Begins trying to acquire (and then renewing). `onChange` is told each time `held` flips. */
  start(onChange: (held: boolean) => void): void;
  /** Stops trying and releases the lease if held, so a successor need not wait for the TTL. */
  stop(): Promise<void>;
  /** True while held only because Redis is unreachable (see `aloneWhenUnreachable`). */
  readonly alone?: boolean;
}

export function createLocalLease(): Lease {
  let held = false;
  let listener: ((held: boolean) => void) | undefined;
  return {
    get held() {
      return held;
    },
    start(onChange) {
      listener = onChange;
      held = true;
      onChange(true);
    },
    async stop() {
      if (held) {
        held = false;
        listener?.(false);
      }
    },
  };
}

export interface RedisLeaseOptions {
  readonly redis: Pick<Redis, 'set' | 'eval'>;
  /** The full key, prefix included. */
  readonly key: string;
  readonly ttlMs: number;
  readonly logger: Logger;
  /** Hold the lease alone after `ttlMs` without an answer from Redis, until it answers again. */
  readonly aloneWhenUnreachable?: boolean;
  /**
   * With `aloneWhenUnreachable`: whether the work's results can travel through Redis again. Running
   * alone goes on until they can, not merely until Redis answers: the connections come back on their
   * own schedules, and a lease given up while this instance still cannot hear the others' results would
   * leave its clients with nothing in between.
   */
  readonly sharedReady?: () => boolean;
}

/** PEXPIRE only if we still hold it: a holder that lost the key (expired, taken over) must not extend another's. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/** DEL only if we still hold it. */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export function createRedisLease(options: RedisLeaseOptions): Lease {
  const { redis, key, ttlMs, logger, aloneWhenUnreachable = false, sharedReady = () => true } = options;
  const token = randomUUID();
  const periodMs = Math.max(50, Math.floor(ttlMs / 3));
  let held = false;
  let renewedAt = 0;
  let alone = false;
  /** When Redis last answered anything (start of that request); the start time before the first answer. */
  let answeredAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let attempt: Promise<void> | undefined;
  let stopped = false;
  let listener: (held: boolean) => void = () => undefined;
  let lastError = 0;

  const set = (next: boolean) => {
    if (held === next) return;
    held = next;
    logger.info({ key, held }, held ? 'lease acquired' : 'lease lost');
    listener(held);
  };

  const once = async () => {
    if (alone && !sharedReady()) return;
    const started = Date.now();
    try {
      if (held && !alone) {
        const renewed = Number(await redis.eval(RENEW, 1, key, token, String(ttlMs)));
        answeredAt = started;
        if (renewed === 1) renewedAt = started;
        else set(false);
      } else {
        const acquired = await redis.set(key, token, 'PX', ttlMs, 'NX');
        answeredAt = started;
        if (alone) {
          alone = false;
          logger.info({ key, shared: acquired === 'OK' }, 'lease: Redis answers again; no longer running alone');
        }
        if (acquired === 'OK' && !stopped) {
          renewedAt = started;
          set(true);
        } else set(false);
      }
    } catch (error) {
      if (Date.now() - lastError > 10_000) {
        lastError = Date.now();
        logger.warn({ key, err: (error as Error).message }, 'lease: redis did not answer');
      }
    }
    if (stopped) return;
    if (aloneWhenUnreachable && !alone && Date.now() - answeredAt >= ttlMs) {
      // Checked before the step-down below, so a holder cut off from Redis stays held without a flip.
      alone = true;
      logger.warn({ key, silentMs: Date.now() - answeredAt }, 'lease: Redis unreachable; running alone until it answers');
      set(true);
      return;
    }
    // Measured from when the last successful renewal was SENT: the key may have expired since then.
    if (held && !alone && Date.now() - renewedAt >= ttlMs) set(false);
  };

  const loop = () => {
    if (stopped) return;
    attempt = once().finally(() => {
      attempt = undefined;
      if (!stopped) timer = setTimeout(loop, periodMs);
    });
  };

  return {
    get held() {
      return held;
    },
    get alone() {
      return alone;
    },
    start(onChange) {
      listener = onChange;
      answeredAt = Date.now();
      loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await attempt;
      if (held && alone) set(false);
      else if (held) {
        set(false);
        await Promise.resolve(redis.eval(RELEASE, 1, key, token)).catch((error: unknown) => {
          logger.warn({ key, err: (error as Error).message }, 'lease: could not release; it expires on its own');
        });
      }
    },
  };
}
