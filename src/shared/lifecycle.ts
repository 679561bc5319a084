import { withDeadline } from './deadline.js';

/** How SHUTDOWN_TIMEOUT_MS is shared out; see {@link shutdownBudget}. */
export interface ShutdownBudget {
  /** Draining HTTP and WebSocket clients. */
  readonly drainMs: number;
  /** The history writer's final flush, after which it spills to disk what it could not write. */
  readonly historyMs: number;
  /** Every other close step, each. */
  readonly stepMs: number;
}

/**
 * 40% of the total for draining clients, 25% for the history writer's flush, and each remaining step
 * at most 5% (at least 50 ms). A step that hangs (a pool waiting on a partitioned database) is
 * abandoned, so the steps after it, and the writer's spill, still happen within the total.
 */
export function shutdownBudget(totalMs: number): ShutdownBudget {
  return {
    drainMs: Math.floor(totalMs * 0.4),
    historyMs: Math.floor(totalMs * 0.25),
    stepMs: Math.max(50, Math.floor(totalMs * 0.05)),
  };
}

/** One thing to release at shutdown. */
export interface CloseStep {
  /** For logs: `database`, `history`, `signals`. */
  readonly name: string;
  readonly close: () => Promise<void> | void;
  /** This step's deadline, when it is not the lifecycle's default. */
  readonly timeoutMs?: number;
}

/** The part of a logger a lifecycle needs (shared/ is a leaf, so it names no logger library). */
export interface LifecycleLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface LifecycleOptions {
  readonly logger: LifecycleLogger;
  /** Deadline of a step that names none. */
  readonly stepMs: number;
}

/**
 * The ordered release of what a process holds. Whatever is acquired registers its close step at
 * once (so a start-up that fails half-way still releases what it got), and {@link stop} runs the steps
 * in reverse: the last thing started is the first released, so a part is closed before what it
 * depends on (the history writer's final flush before the database pool). Each step gets its own
 * deadline; one that misses it is abandoned with a warning and the next one runs. A step's error is
 * logged, never thrown: stopping must always reach the end.
 */
export class Lifecycle {
  readonly #steps: CloseStep[] = [];
  #stopping: Promise<void> | undefined;

  constructor(private readonly options: LifecycleOptions) {}

  /** Registers close steps, released after the ones registered later. */
  add(...steps: readonly CloseStep[]): void {
    this.#steps.push(...steps);
  }

  /** Releases everything registered, in reverse; every call returns the same promise. */
  stop(): Promise<void> {
    this.#stopping ??= this.#release();
    return this.#stopping;
  }

  async #release(): Promise<void> {
    // A step registered while stopping (a start-up still under way) is released too, before the
    // ones registered ahead of it.
    for (let step = this.#steps.pop(); step; step = this.#steps.pop()) await this.#close(step);
  }

  async #close({ name, close, timeoutMs = this.options.stepMs }: CloseStep): Promise<void> {
    const outcome = await withDeadline(
      Promise.resolve()
        .then(close)
        .then(
          () => 'closed' as const,
          (error: unknown) => ({ error }),
        ),
      timeoutMs,
    );
    if (outcome === 'timeout') this.options.logger.warn({ part: name, timeoutMs }, `${name} did not close in time; moving on`);
    else if (outcome !== 'closed') this.options.logger.warn({ part: name, err: outcome.error }, `error while closing ${name}`);
  }
}
