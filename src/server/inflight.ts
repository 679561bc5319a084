import type { GraphQLError } from 'graphql';
import { ErrorCode, codedError } from '../shared/errors.js';

/**
 * Most operations waiting for room at once; more are refused at once. Each waiting HTTP request holds
 * its body (at most MAX_BODY_BYTES), so this bounds the queue's memory too.
 */
export const INFLIGHT_MAX_QUEUE = 1_000;

/** A share of the budget held by one running operation; releasing twice is harmless. */
export interface Lease {
  readonly cost: number;
  release(): void;
}

interface Waiter {
  readonly cost: number;
  readonly grant: (lease: Lease) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * The cost (limits.ts) of the operations this instance executes at once, bounded. Cost is what an
 * operation makes the server hold while it runs (rows, objects, the response being built), so
 * bounding its sum bounds the memory of concurrent operations, whatever the per-caller rate limits
 * let through: without it, 50 admitted requests each within MAX_QUERY_COST together exhausted the
 * heap. When the budget is full an operation waits, first come first served, up to `maxWaitMs`, then
 * is refused with RATE_LIMITED (retry shortly); a queue already `maxQueue` long refuses at once.
 * An operation costing more than the whole budget takes all of it, alone.
 */
export class InflightBudget {
  #inUse = 0;
  readonly #queue: Waiter[] = [];

  constructor(
    readonly capacity: number,
    private readonly options: { maxWaitMs: number; maxQueue: number },
  ) {}

  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * A lease of `cost` (capped at the capacity), at once when it fits and nobody waits before it;
   * otherwise after waiting. `wait: 'unbounded'` is for work the server owes anyway (a subscription's
   * next event): it queues like the rest but is never refused.
   */
  acquire(cost: number, wait: 'bounded' | 'unbounded' = 'bounded'): Promise<Lease> {
    const share = Math.min(Math.max(0, cost), this.capacity);
    if (this.#queue.length === 0 && this.#inUse + share <= this.capacity) return Promise.resolve(this.#grant(share));
    if (wait === 'bounded' && this.#queue.length >= this.options.maxQueue) return Promise.reject(this.#full(share));
    return new Promise<Lease>((resolve, reject) => {
      const timer =
        wait === 'bounded'
          ? setTimeout(() => {
              const index = this.#queue.indexOf(waiter);
              if (index >= 0) this.#queue.splice(index, 1);
              reject(this.#full(share));
              // Its place may have held up smaller operations behind it.
              this.#drain();
            }, this.options.maxWaitMs)
          : undefined;
      const waiter: Waiter = { cost: share, grant: resolve, timer };
      this.#queue.push(waiter);
    });
  }

  #grant(share: number): Lease {
    this.#inUse += share;
    let released = false;
    return {
      cost: share,
      release: () => {
        if (released) return;
        released = true;
        this.#inUse -= share;
        this.#drain();
      },
    };
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#inUse + this.#queue[0]!.cost <= this.capacity) {
      const waiter = this.#queue.shift()!;
      clearTimeout(waiter.timer);
      waiter.grant(this.#grant(waiter.cost));
    }
  }

  #full(cost: number): GraphQLError {
    const retryAfterSeconds = Math.max(1, Math.ceil(this.options.maxWaitMs / 1000));
    return codedError(
      ErrorCode.RATE_LIMITED,
      `This instance is running as much as it can at once (INFLIGHT_COST_BUDGET ${this.capacity}; this operation costs ${cost}); retry in ${retryAfterSeconds} s`,
      { retryAfterSeconds, limit: 'inflightCost', http: { status: 429, headers: new Map([['retry-after', String(retryAfterSeconds)]]) } },
    );
  }
}
