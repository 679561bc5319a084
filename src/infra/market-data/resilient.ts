import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../logger/logger.js';
import {
  breakerControls,
  breakerProblems,
  breakerRefusal,
  createBreaker,
  type BreakerControls,
  type BreakerOptions,
  type BreakerState,
} from './breaker.js';
import type { Bar, FetchBarsOptions, MarketDataProvider } from './market-data.js';

/**
 * Makes any market-data provider safe to sit behind the gateway, and keeps predictions coming while it
 * is down.
 *
 * ```ts
 * const market = resilientFetches(createBarsStoreProvider(repository), { timeoutMs: 2_000, ... });
 * const bars = await market.fetchBars(['AAPL'], { lookback: 100 });
 * isStaleBars(bars.get('AAPL')!); // true while the provider fails and these are the last good bars
 * ```
 *
 * - Each attempt has a timeout; failed attempts are retried with jittered exponential backoff. The
 *   contract has no cancellation, so a timed-out attempt is abandoned, not aborted: its late answer
 *   is dropped (a database pool bounds how many of those can pile up).
 * - The whole retried call is one action of the market-data circuit breaker (breaker.ts, opossum): after enough failures it opens
 *   and calls fail in microseconds without touching the provider, until a half-open trial succeeds.
 * - Every successful answer is remembered per (symbol, lookback, until) in a bounded LRU. When a call
 *   fails (or the breaker is open), symbols with a remembered answer get it back marked stale
 *   ({@link isStaleBars}), with their real times, so a prediction says `stale: true` and its true
 *   `asOf`. If a requested symbol has nothing remembered the call rejects with
 *   {@link MarketUnavailableError}, which still carries the stale answers it could give.
 *
 * Providers that already retry internally (vendor-http.ts) can be wrapped with `retries: 0`.
 */
export interface ResilienceOptions {
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Extra attempts after the first. */
  readonly retries: number;
  /** Base backoff between attempts; full jitter, doubling per retry. */
  readonly backoffMs: number;
  readonly breaker: BreakerOptions;
  /** How many (symbol, lookback, until) answers to remember for stale serving. */
  readonly lastGoodEntries: number;
  readonly logger: Logger;
  /** For deterministic jitter in tests. */
  readonly random?: () => number;
}

export type { BreakerState } from './breaker.js';

export interface ResilientProvider extends MarketDataProvider {
  readonly breakerState: BreakerState;
  /** Called on every transition, in order; a listener that throws is logged and ignored. */
  onBreakerStateChange(listener: (state: BreakerState) => void): void;
  /** Stops the breaker's timers and any backoff wait; later calls fail fast. */
  shutdown(): void;
}

/** The provider could not answer and some requested symbols have no last good bars to fall back on. */
export class MarketUnavailableError extends Error {
  override readonly name = 'MarketUnavailableError';
  constructor(
    readonly provider: string,
    readonly reason: 'breaker-open' | 'timeout' | 'failed' | 'shutdown',
    /** Stale answers for the requested symbols that had one. */
    readonly stale: ReadonlyMap<string, Bar[]>,
    options?: { cause?: unknown },
  ) {
    super(`market data from "${provider}" is unavailable (${reason})`, options);
  }
}

/** True for a bar list served from memory because its provider is failing. */
export function isStaleBars(bars: readonly Bar[] | undefined): boolean {
  return bars !== undefined && staleLists.has(bars);
}

/** Identity marks: a stale list is a distinct array, so the same bars fetched fresh are never marked. */
const staleLists = new WeakSet<readonly Bar[]>();

class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
}

export function resilientFetches(provider: MarketDataProvider, options: ResilienceOptions): ResilientProvider {
  validate(options);
  const { timeoutMs, retries, backoffMs } = options;
  const random = options.random ?? Math.random;
  const log = options.logger.child({ provider: provider.name });
  const stopping = new AbortController();
  // Values are the stale copies, marked once when stored, so serving them allocates nothing.
  const lastGood = new LRUCache<string, Bar[]>({ max: options.lastGoodEntries });
  const keyOf = (symbol: string, { lookback, until }: FetchBarsOptions) => `${lookback}\u0000${until?.getTime() ?? ''}\u0000${symbol}`;

  const attempt = async (symbols: readonly string[], fetchOptions: FetchBarsOptions): Promise<Map<string, Bar[]>> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AttemptTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([provider.fetchBars(symbols, fetchOptions), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const withRetries = async (symbols: readonly string[], fetchOptions: FetchBarsOptions): Promise<Map<string, Bar[]>> => {
    for (let attemptNo = 1; ; attemptNo++) {
      try {
        return await attempt(symbols, fetchOptions);
      } catch (error) {
        if (attemptNo > retries || stopping.signal.aborted) throw error;
        const delayMs = random() * backoffMs * 2 ** Math.min(attemptNo - 1, 20);
        log.debug({ attempt: attemptNo, delayMs: Math.round(delayMs), err: error }, 'market-data fetch failed; retrying');
        await sleep(delayMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  };

  const breaker = createBreaker(
    withRetries,
    options.breaker,
    {
      name: `market-data:${provider.name}`,
      messages: {
        open: `market-data circuit open: serving last good bars as stale for ${options.breaker.resetTimeoutMs} ms`,
        halfOpen: 'market-data circuit half-open: letting one trial call through',
        close: 'market-data circuit closed: provider answering again',
      },
    },
    log,
  );

  const fallBack = (symbols: readonly string[], fetchOptions: FetchBarsOptions, error: unknown): Map<string, Bar[]> => {
    const stale = new Map<string, Bar[]>();
    for (const symbol of symbols) {
      const remembered = lastGood.get(keyOf(symbol, fetchOptions));
      if (remembered) stale.set(symbol, remembered);
    }
    const refusal = breakerRefusal(error);
    const reason =
      refusal === 'open' ? 'breaker-open' : refusal === 'shutdown' ? 'shutdown' : error instanceof AttemptTimeout ? 'timeout' : 'failed';
    if (stale.size === symbols.length) return stale;
    throw new MarketUnavailableError(provider.name, reason, stale, { cause: error });
  };

  return Object.assign(breakerControls(breaker, stopping), {
    name: provider.name,
    listSymbols: () => provider.listSymbols(),
    async fetchBars(symbols, fetchOptions) {
      if (symbols.length === 0) return new Map();
      let fresh: Map<string, Bar[]>;
      try {
        fresh = await breaker.fire(symbols, fetchOptions);
      } catch (error) {
        return fallBack(symbols, fetchOptions, error);
      }
      for (const [symbol, bars] of fresh) {
        const copy = [...bars];
        staleLists.add(copy);
        lastGood.set(keyOf(symbol, fetchOptions), copy);
      }
      return fresh;
    },
  } satisfies Omit<ResilientProvider, keyof BreakerControls>);
}

function validate(options: ResilienceOptions): void {
  const problems: string[] = [];
  const { timeoutMs, retries, backoffMs, breaker, lastGoodEntries } = options;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
    problems.push(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  if (!(Number.isInteger(retries) && retries >= 0)) problems.push(`retries must be a non-negative integer, got ${retries}`);
  if (!(Number.isFinite(backoffMs) && backoffMs >= 0))
    problems.push(`backoffMs must be a non-negative number of milliseconds, got ${backoffMs}`);
  problems.push(...breakerProblems(breaker));
  if (!(Number.isInteger(lastGoodEntries) && lastGoodEntries >= 1))
    problems.push(`lastGoodEntries must be a positive integer, got ${lastGoodEntries}`);
  if (problems.length > 0) throw new RangeError(`resilient market-data provider: ${problems.join('; ')}`);
}
