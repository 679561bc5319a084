import CircuitBreaker from 'opossum';
import type { Logger } from '../logger/logger.js';

/**
 * The one circuit breaker of market data (opossum), shared by the bars-store wrapper (resilient.ts)
 * and the vendor HTTP client (vendor-http.ts): its options, their validation, the state it reports,
 * the listeners told of each transition, and how its own refusals are told apart from the action's.
 *
 * The wrapped action is the WHOLE retried call, so the breaker measures "did we get an answer", not
 * attempts; opossum's own timeout is off because attempts time out on their own (a timeout over the
 * whole call would cut retries short).
 */
export interface BreakerOptions {
  /** Opens when the failure rate in the rolling window is ABOVE this (so 100 only opens from half-open). */
  readonly errorThresholdPercentage: number;
  /** How long the breaker stays open before letting one trial call through. */
  readonly resetTimeoutMs: number;
  /** Calls the rolling window must hold before the failure rate can open the breaker. */
  readonly volumeThreshold: number;
  /** Length of the rolling window; opossum's default is 10 s. */
  readonly rollingCountTimeoutMs?: number | undefined;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface Breaker<A extends unknown[], R> {
  readonly state: BreakerState;
  /** Called on every transition, in order; a listener that throws is logged and ignored. */
  onStateChange(listener: (state: BreakerState) => void): void;
  /** Runs the action through the breaker; the breaker's own refusals reject with opossum's errors (see {@link breakerRefusal}). */
  fire(...args: A): Promise<R>;
  shutdown(): void;
}

/** What an owner of a breaker shows the world: the state, its transitions, and a shutdown. */
export interface BreakerControls {
  readonly breakerState: BreakerState;
  /** Called on every transition, in order; a listener that throws is logged and ignored. */
  onBreakerStateChange(listener: (state: BreakerState) => void): void;
  /** Aborts `stopping` (in-flight attempts, backoff waits), stops the breaker's timers; later calls fail fast. */
  shutdown(): void;
}

/** The controls of `breaker`, as a fresh object the owner adds its own methods to (`Object.assign` keeps the getter). */
export function breakerControls(
  breaker: Breaker<never[], unknown>,
  stopping: AbortController,
  afterShutdown?: () => void,
): BreakerControls {
  return {
    get breakerState(): BreakerState {
      return breaker.state;
    },
    onBreakerStateChange: (listener) => breaker.onStateChange(listener),
    shutdown() {
      stopping.abort();
      breaker.shutdown();
      afterShutdown?.();
    },
  };
}

export interface BreakerLabels {
  /** opossum's name, for its own diagnostics. */
  readonly name: string;
  /** The warn-level lines logged on each transition. */
  readonly messages: { readonly open: string; readonly halfOpen: string; readonly close: string };
}

export function createBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  options: BreakerOptions,
  labels: BreakerLabels,
  logger: Logger,
): Breaker<A, R> {
  const listeners: Array<(state: BreakerState) => void> = [];
  const breaker = new CircuitBreaker<A, R>(action, {
    name: labels.name,
    timeout: false,
    errorThresholdPercentage: options.errorThresholdPercentage,
    resetTimeout: options.resetTimeoutMs,
    volumeThreshold: options.volumeThreshold,
    rollingCountTimeout: options.rollingCountTimeoutMs,
  });
  const announce = (state: BreakerState, message: string) => () => {
    logger.warn({ breaker: state }, message);
    for (const listener of listeners) {
      // A throw here would unwind through opossum mid-transition and leave the pending call unsettled.
      try {
        listener(state);
      } catch (error) {
        logger.error({ err: error }, 'circuit breaker listener threw');
      }
    }
  };
  breaker.on('open', announce('open', labels.messages.open));
  breaker.on('halfOpen', announce('half-open', labels.messages.halfOpen));
  breaker.on('close', announce('closed', labels.messages.close));
  return {
    get state(): BreakerState {
      if (breaker.halfOpen) return 'half-open';
      return breaker.closed ? 'closed' : 'open';
    },
    onStateChange: (listener) => void listeners.push(listener),
    fire: (...args) => breaker.fire(...args),
    shutdown: () => breaker.shutdown(),
  };
}

/** `open` / `shutdown` when the breaker itself refused the call (the action never ran), else undefined. */
export function breakerRefusal(error: unknown): 'open' | 'shutdown' | undefined {
  if (!(error instanceof Error) || !CircuitBreaker.isOurError(error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return code === 'EOPENBREAKER' ? 'open' : code === 'ESHUTDOWN' ? 'shutdown' : undefined;
}

/** Problems with breaker options, worded for a RangeError naming the caller; empty when valid. */
export function breakerProblems(breaker: BreakerOptions | undefined): string[] {
  const problems: string[] = [];
  const threshold = breaker?.errorThresholdPercentage;
  if (!(typeof threshold === 'number' && threshold >= 1 && threshold <= 100)) {
    problems.push(`breaker.errorThresholdPercentage must be between 1 and 100, got ${threshold}`);
  }
  if (!(Number.isFinite(breaker?.resetTimeoutMs) && breaker!.resetTimeoutMs > 0)) {
    problems.push(`breaker.resetTimeoutMs must be a positive number of milliseconds, got ${breaker?.resetTimeoutMs}`);
  }
  if (!(Number.isInteger(breaker?.volumeThreshold) && breaker!.volumeThreshold >= 0)) {
    problems.push(`breaker.volumeThreshold must be a non-negative integer, got ${breaker?.volumeThreshold}`);
  }
  const window = breaker?.rollingCountTimeoutMs;
  // opossum splits the window into 10 buckets rotated by a timer; under 10 ms that timer would spin.
  if (window !== undefined && !(Number.isFinite(window) && window >= 10)) {
    problems.push(`breaker.rollingCountTimeoutMs must be at least 10 ms, got ${window}`);
  }
  return problems;
}
