/**
 * Calls `expire(item)` once an item's deadline has passed, with one shared sweep instead of a timer
 * per item. Used to close WebSocket connections when their credential (a JWT's `exp`) runs out.
 *
 * Why not one `setTimeout` per connection: Node keeps one timer list per distinct duration, and
 * clearing an *unref'd* timer leaves its emptied list in place until the original duration has run
 * out (lib/internal/timers.js only deletes lists of ref'd timers on clear, "because unrefed ones are
 * incredibly likely to come from http and be recreated shortly after"). Every JWT connection has its
 * own distance to `exp`, usually hours, so each closed connection left a list behind for the token's
 * lifetime, and graphql-ws `lazy` clients open a socket per operation, so they pile up without bound
 * (the heap snapshot that showed it: docs/decisions/hot-path-measurements.md).
 *
 * The sweep runs every `sweepMs` (so an expiry is acted on at most that late) and only while something
 * is watched; its one duration reuses one timer list.
 */
export class ExpirySweep<T> {
  readonly #due = new Map<T, number>();
  readonly #sweepMs: number;
  readonly #expire: (item: T) => void;
  readonly #onError: (error: unknown, item: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { sweepMs: number; expire: (item: T) => void; onError: (error: unknown, item: T) => void; now?: () => number }) {
    if (!(Number.isInteger(options.sweepMs) && options.sweepMs > 0))
      throw new RangeError(`sweepMs must be a positive integer, got ${options.sweepMs}`);
    this.#sweepMs = options.sweepMs;
    this.#expire = options.expire;
    this.#onError = options.onError;
    this.#now = options.now ?? Date.now;
  }

  /** How many items are waiting for their deadline. */
  get size(): number {
    return this.#due.size;
  }

  /** Watch `item` until `expiresAt` (epoch ms); watching it again replaces its deadline. */
  watch(item: T, expiresAt: number): void {
    this.#due.set(item, expiresAt);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.#sweepMs);
      this.#timer.unref(); // the connections keep the process alive, not their expiry
    }
  }

  unwatch(item: T): void {
    if (this.#due.delete(item) && this.#due.size === 0) this.#stop();
  }

  /** Forget everything and stop the sweep. */
  close(): void {
    this.#due.clear();
    this.#stop();
  }

  #sweep(): void {
    const now = this.#now();
    const expired: T[] = [];
    for (const [item, expiresAt] of this.#due) if (expiresAt <= now) expired.push(item);
    for (const item of expired) {
      this.#due.delete(item);
      // One item's failure must not keep the others open, nor escape a timer callback (a crash).
      try {
        this.#expire(item);
      } catch (error) {
        this.#onError(error, item);
      }
    }
    if (this.#due.size === 0) this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
