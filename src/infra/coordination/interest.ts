import type { Redis } from 'ioredis';
import type { Logger } from '../logger/logger.js';

/**
 * What live subscribers want, across every instance: a set of string members (the signals module
 * uses `strategy|symbol`) that the instance holding the monitor lease reads on every tick, while each
 * instance only knows its own subscribers.
 *
 * Each instance counts its own subscriptions per member (`add` / `remove`). Engines:
 * {@link createLocalInterest} (one process: the counts are the set) and {@link createRedisInterest}
 * (a sorted set of member → expiry time: every instance re-adds its members every `refreshMs` with
 * an expiry of three periods ahead, and adds new members at once; `all()` reads the members not yet
 * expired). A member whose last subscriber left is not deleted, it simply stops being refreshed and
 * expires: removing it could race with another instance that still wants it. An instance that dies
 * stops refreshing, so its interest lapses within three periods too.
 */
export interface InterestSet {
  add(members: readonly string[]): void;
  remove(members: readonly string[]): void;
  /** Every member wanted by any instance. */
  all(): Promise<string[]>;
  /** This instance's members only. */
  local(): string[];
  start(): void;
  stop(): Promise<void>;
}

/** `strategy|symbol`: the member for one subscribed pair (`|` cannot occur in either). */
export const interestMember = (strategy: string, symbol: string): string => `${strategy}|${symbol}`;

/** The pair {@link interestMember} made `member` from; undefined for a member it could not have made. */
export function parseInterestMember(member: string): { strategy: string; symbol: string } | undefined {
  const bar = member.indexOf('|');
  return bar > 0 ? { strategy: member.slice(0, bar), symbol: member.slice(bar + 1) } : undefined;
}

/**
 * Hands `follow` the symbols any instance's subscribers want, every `everyMs` (a vendor streams them
 * beyond its configured universe). Returns the stop. An unreadable set is skipped: the signals monitor
 * logs it, and the next round retries.
 */
export function followInterest(interest: Pick<InterestSet, 'all'>, follow: (symbols: string[]) => void, everyMs = 1_000): () => void {
  const timer = setInterval(() => {
    interest.all().then(
      (members) => follow([...new Set(members.flatMap((member) => parseInterestMember(member)?.symbol ?? []))]),
      () => undefined,
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

class Counts {
  readonly #counts = new Map<string, number>();
  /** Returns the members that were not present before. */
  add(members: readonly string[]): string[] {
    const fresh: string[] = [];
    for (const m of members) {
      const n = this.#counts.get(m) ?? 0;
      if (n === 0) fresh.push(m);
      this.#counts.set(m, n + 1);
    }
    return fresh;
  }
  remove(members: readonly string[]): void {
    for (const m of members) {
      const n = (this.#counts.get(m) ?? 0) - 1;
      if (n <= 0) this.#counts.delete(m);
      else this.#counts.set(m, n);
    }
  }
  members(): string[] {
    return [...this.#counts.keys()];
  }
}

export function createLocalInterest(): InterestSet {
  const counts = new Counts();
  return {
    add: (members) => void counts.add(members),
    remove: (members) => counts.remove(members),
    all: async () => counts.members().sort(),
    local: () => counts.members(),
    start: () => undefined,
    stop: async () => undefined,
  };
}

export interface RedisInterestOptions {
  readonly redis: Pick<Redis, 'zadd' | 'zrangebyscore' | 'zremrangebyscore'>;
  /** The sorted set's full key, prefix included. */
  readonly key: string;
  readonly refreshMs: number;
  readonly logger: Logger;
}

export function createRedisInterest(options: RedisInterestOptions): InterestSet {
  const { redis, key, refreshMs, logger } = options;
  const counts = new Counts();
  let timer: NodeJS.Timeout | undefined;
  let lastError = 0;
  const warn = (error: unknown) => {
    if (Date.now() - lastError < 10_000) return;
    lastError = Date.now();
    logger.warn({ key, err: (error as Error).message }, 'interest set: redis did not answer');
  };
  const publish = (members: readonly string[]) => {
    if (members.length === 0) return;
    const expiry = Date.now() + 3 * refreshMs;
    const args = members.flatMap((m) => [expiry, m] as const);
    redis.zadd(key, ...args).catch(warn);
  };
  return {
    add(members) {
      publish(counts.add(members));
    },
    remove(members) {
      counts.remove(members);
    },
    async all() {
      const now = Date.now();
      // Expired members are pruned on the way; whoever runs the monitor reads this, so once per tick.
      redis.zremrangebyscore(key, '-inf', now).catch(warn);
      return (await redis.zrangebyscore(key, now, '+inf')).sort();
    },
    local: () => counts.members(),
    start() {
      timer = setInterval(() => publish(counts.members()), refreshMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
}
