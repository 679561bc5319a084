import type { Redis } from 'ioredis';
import type { Logger } from '../logger/logger.js';

/**
 * How far some work got, per member, shared by whoever takes the work over: a map of string member →
 * a number that only moves forward (the signals monitor keeps, per `strategy|symbol`, the time of the
 * last bar it published, so the instance that next holds the monitor lease continues right after it).
 *
 * Engines: {@link createLocalMarks} (one process: a map) and {@link createRedisMarks} (a Redis hash
 * next to the lease; `advance` is a compare-and-set per field, so a holder that lost the lease and
 * writes late can never move a mark backwards). Readers must treat a failed `read` as "unknown", not
 * as "nothing published": the marks live in Redis, which may be down or may have restarted empty.
 */
export interface Marks {
  /** The marks of `members` that exist. Rejects when the store cannot be read. */
  read(members: readonly string[]): Promise<Map<string, number>>;
  /** Raises each member's mark to the given value (a lower value leaves it as it is); false if the store did not take it. */
  advance(marks: ReadonlyMap<string, number>): Promise<boolean>;
  /** Drops members whose work stopped (nobody wants them any more). */
  forget(members: readonly string[]): Promise<void>;
}

export function createLocalMarks(): Marks {
  const marks = new Map<string, number>();
  return {
    async read(members) {
      const out = new Map<string, number>();
      for (const m of members) {
        const value = marks.get(m);
        if (value !== undefined) out.set(m, value);
      }
      return out;
    },
    async advance(next) {
      for (const [m, value] of next) if (!(marks.get(m)! >= value)) marks.set(m, value);
      return true;
    },
    async forget(members) {
      for (const m of members) marks.delete(m);
    },
  };
}

export interface RedisMarksOptions {
  readonly redis: Pick<Redis, 'hmget' | 'eval' | 'hdel'>;
  /** The hash's full key, prefix included. */
  readonly key: string;
  /** The hash expires this long after its last write, so a deployment that stopped leaves nothing behind. */
  readonly ttlMs: number;
  readonly logger: Logger;
}

/** HSET each field only if the new value is greater; then refresh the hash's expiry. ARGV: ttl, field, value, … */
const ADVANCE = `for i = 2, #ARGV, 2 do
  local current = tonumber(redis.call('hget', KEYS[1], ARGV[i]))
  if current == nil or current < tonumber(ARGV[i + 1]) then redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('pexpire', KEYS[1], ARGV[1])
return 1`;

export function createRedisMarks(options: RedisMarksOptions): Marks {
  const { redis, key, ttlMs, logger } = options;
  let lastError = 0;
  const warn = (error: unknown) => {
    if (Date.now() - lastError < 10_000) return;
    lastError = Date.now();
    logger.warn({ key, err: (error as Error).message }, 'marks: redis did not answer');
  };
  return {
    async read(members) {
      const out = new Map<string, number>();
      if (members.length === 0) return out;
      const values = await redis.hmget(key, ...members);
      members.forEach((m, i) => {
        const value = Number(values[i] ?? NaN);
        if (Number.isFinite(value)) out.set(m, value);
      });
      return out;
    },
    async advance(marks) {
      if (marks.size === 0) return true;
      const args = [...marks].flatMap(([m, value]) => [m, String(value)]);
      try {
        await redis.eval(ADVANCE, 1, key, String(ttlMs), ...args);
        return true;
      } catch (error) {
        warn(error);
        return false;
      }
    },
    async forget(members) {
      if (members.length === 0) return;
      await Promise.resolve(redis.hdel(key, ...members)).catch(warn);
    },
  };
}
