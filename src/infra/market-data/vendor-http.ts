import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger/logger.js';
import { breakerControls, breakerProblems, breakerRefusal, createBreaker, type BreakerOptions, type BreakerState } from './breaker.js';
import type { Bar, FetchBarsOptions, MarketDataProvider } from './market-data.js';

/**
 * The shape of an adapter for a market-data vendor's HTTP API. A vendor supplies how to ask for many
 * symbols in ONE request and how to read the answer; what every remote dependency needs in order to
 * sit safely behind a gateway lives here once:
 *
 * - Timeouts are per attempt (`AbortSignal.timeout`), not per call, so one hung connection cannot eat
 *   the time of the retries that would have succeeded. They cover reading the body too.
 * - Only failures that another attempt can fix are retried: network errors, timeouts, 429 and 5xx.
 *   Another 4xx or a body that does not parse will be the same next time, so retrying would only
 *   delay the error and add load. Backoff is exponential with full jitter so that gateways that failed
 *   together do not retry together; a 429/503's `Retry-After` (seconds) is a floor on the wait.
 * - The whole retried call is one circuit-breaker action, so the breaker measures "did we get bars",
 *   not attempts: a call that saw three 503s is one failure. While the breaker is open, calls fail in
 *   microseconds with {@link VendorUnavailableError} without touching the network, which keeps
 *   GraphQL requests fast and stops a gateway from hammering a vendor that is down. After
 *   `resetTimeoutMs` it is half-open: one trial call goes through, the rest still fail fast, and the
 *   trial's outcome closes or re-opens it.
 *
 * The adapter also holds the parser to the provider contract: only requested symbols, at or before
 * `until`, ascending, at most `lookback` each. Vendors that answer newest-first need not care.
 */
export interface VendorHttpOptions {
  /** Provider label for metrics and logs. */
  name: string;
  /**
   * Builds the ONE request for many symbols (a vendor with a per-symbol API must be adapted elsewhere).
   * Called once per `fetchBars` and replayed on every attempt, so a body must be replayable (a string,
   * not a stream). `init.signal` is replaced by the adapter's own (timeout and shutdown).
   */
  buildRequest(symbols: readonly string[], options: FetchBarsOptions): { url: string; init?: RequestInit };
  /** Parses the vendor's JSON body into bars; throws on a malformed body (that counts as a failure). */
  parseResponse(body: unknown, symbols: readonly string[]): Map<string, Bar[]>;
  listSymbols(): Promise<string[]>;
  /** Per attempt, enforced with `AbortSignal.timeout`. */
  timeoutMs: number;
  /** Extra attempts after the first, for retryable failures only. */
  retries: number;
  /** Base delay; exponential with full jitter, capped at {@link MAX_BACKOFF_MS}. */
  backoffMs: number;
  /** The shared market-data breaker's options (breaker.ts). */
  breaker: BreakerOptions;
  logger: Logger;
  /** Defaults to the global fetch. */
  fetchImpl?: typeof fetch;
  /** For deterministic jitter in tests; defaults to `Math.random`. */
  random?: () => number;
}

export type { BreakerState } from './breaker.js';

/** What the client needs: everything but the provider's request builder and parser. */
export type VendorHttpClientOptions = Omit<VendorHttpOptions, 'buildRequest' | 'parseResponse' | 'listSymbols'>;

/**
 * The timeout/retry/breaker machinery on its own, for adapters whose calls do not fit one request per
 * `fetchBars` (a vendor that pages its answers, a backfill): each `request` is one breaker action.
 */
export interface VendorHttpClient {
  readonly name: string;
  /** After {@link shutdown} this stays `open`: every call fails fast. */
  readonly breakerState: BreakerState;
  /** Called on every transition, in order. A listener that throws is logged and does not break the breaker. */
  onBreakerStateChange(listener: (state: BreakerState) => void): void;
  /** Aborts in-flight attempts and backoff waits, stops the breaker's timers; later calls fail fast. */
  shutdown(): void;
  /**
   * GETs (or whatever `init` says) `request.url` with retries, and parses its JSON body with `parse`;
   * a `parse` that throws makes it a `bad-body` failure (not retried). Rejects with {@link VendorUnavailableError}.
   */
  request<T>(request: { url: string; init?: RequestInit }, parse: (body: unknown) => T): Promise<T>;
}

export interface VendorHttpProvider extends MarketDataProvider {
  /** After {@link shutdown} this stays `open`: every call fails fast. */
  readonly breakerState: BreakerState;
  /** Called on every transition, in order. A listener that throws is logged and does not break the breaker. */
  onBreakerStateChange(listener: (state: BreakerState) => void): void;
  /** Aborts in-flight attempts and backoff waits, stops the breaker's timers; later calls fail fast. */
  shutdown(): void;
}

/**
 * The longest wait between two attempts, jittered or asked for by `Retry-After`. A caller of the
 * gateway is waiting on the answer; past a few seconds another attempt rarely beats failing and
 * letting the breaker take over. A `Retry-After` longer than this ends the retries at once: asking
 * again sooner than the vendor said is both futile and impolite.
 */
export const MAX_BACKOFF_MS = 5_000;

export type VendorFailureReason = 'breaker-open' | 'timeout' | 'network' | 'http-status' | 'bad-body' | 'shutdown';

/** The vendor could not give us bars: which vendor, why, and after how many attempts (0: none was made). */
export class VendorUnavailableError extends Error {
  override readonly name = 'VendorUnavailableError';
  /** The HTTP status of the last attempt, for `http-status`. */
  readonly status: number | undefined;

  constructor(
    readonly vendor: string,
    readonly reason: VendorFailureReason,
    readonly attempts: number,
    details: { detail?: string; status?: number; cause?: unknown } = {},
  ) {
    const why = details.detail ?? reason;
    super(
      attempts === 0
        ? `market-data vendor "${vendor}" unavailable: ${why}; no request was made`
        : `market-data vendor "${vendor}" unavailable: ${why} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.status = details.status;
  }
}

type VendorRequest = ReturnType<VendorHttpOptions['buildRequest']>;

type Attempt =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false;
      readonly reason: Exclude<VendorFailureReason, 'breaker-open'>;
      readonly retryable: boolean;
      readonly detail: string;
      readonly status?: number;
      readonly retryAfterMs?: number;
      readonly cause?: unknown;
    };

export function createVendorHttpProvider(options: VendorHttpOptions): VendorHttpProvider {
  validate(options);
  const client = createVendorHttpClient(options);
  return {
    name: client.name,
    listSymbols: () => options.listSymbols(),
    get breakerState() {
      return client.breakerState;
    },
    onBreakerStateChange: (listener) => client.onBreakerStateChange(listener),
    shutdown: () => client.shutdown(),
    async fetchBars(symbols, fetchOptions) {
      if (symbols.length === 0) return new Map();
      if (stoppedClients.has(client)) throw new VendorUnavailableError(client.name, 'shutdown', 0, { detail: 'provider shut down' });
      // Outside the breaker: a builder that throws is our bug, not the vendor being down.
      const request = options.buildRequest(symbols, fetchOptions);
      const parsed = await client.request(request, (body) => options.parseResponse(body, symbols));
      return conform(parsed, symbols, fetchOptions);
    },
  };
}

const stoppedClients = new WeakSet<VendorHttpClient>();

export function createVendorHttpClient(options: VendorHttpClientOptions): VendorHttpClient {
  validate(options);
  const { name, timeoutMs, retries, backoffMs } = options;
  const fetchImpl = options.fetchImpl ?? globalThis.fetch;
  const random = options.random ?? Math.random;
  const log = options.logger.child({ provider: name });
  const stopping = new AbortController();

  const attemptOnce = async (request: VendorRequest, parse: (body: unknown) => unknown): Promise<Attempt> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    let text: string;
    try {
      const response = await fetchImpl(request.url, { ...request.init, signal: AbortSignal.any([timeout, stopping.signal]) });
      if (!response.ok) {
        // Unread bodies pin the connection until garbage collection.
        response.body?.cancel().catch(() => {});
        return statusFailure(response);
      }
      text = await response.text();
    } catch (error) {
      if (stopping.signal.aborted) return { ok: false, reason: 'shutdown', retryable: false, detail: 'provider shut down' };
      if (timeout.aborted) return { ok: false, reason: 'timeout', retryable: true, detail: `timed out after ${timeoutMs} ms` };
      return { ok: false, reason: 'network', retryable: true, detail: `network error: ${describe(error)}`, cause: error };
    }
    try {
      return { ok: true, value: parse(JSON.parse(text) as unknown) };
    } catch (error) {
      return { ok: false, reason: 'bad-body', retryable: false, detail: `malformed response body: ${describe(error)}`, cause: error };
    }
  };

  /** Null: do not retry, the vendor asked for a longer wait than we are willing to make. */
  const delayBefore = (retry: number, retryAfterMs: number | undefined): number | null => {
    // The exponent is bounded so that a zero base never meets an infinite power (NaN).
    const jittered = random() * Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.min(retry - 1, 30));
    if (retryAfterMs === undefined) return jittered;
    return retryAfterMs > MAX_BACKOFF_MS ? null : Math.max(retryAfterMs, jittered);
  };

  const fetchWithRetries = async (request: VendorRequest, parse: (body: unknown) => unknown): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      const outcome = await attemptOnce(request, parse);
      if (outcome.ok) return outcome.value;
      const giveUp = (detail: string) =>
        new VendorUnavailableError(name, outcome.reason, attempt, { detail, status: outcome.status, cause: outcome.cause });
      if (!outcome.retryable || attempt > retries) throw giveUp(outcome.detail);
      const delayMs = delayBefore(attempt, outcome.retryAfterMs);
      if (delayMs === null) {
        throw giveUp(`${outcome.detail}, Retry-After ${outcome.retryAfterMs! / 1000} s exceeds the ${MAX_BACKOFF_MS / 1000} s backoff cap`);
      }
      log.debug(
        { attempt, attempts: retries + 1, reason: outcome.reason, status: outcome.status, delayMs: Math.round(delayMs) },
        'market-data vendor request failed; retrying',
      );
      try {
        await sleep(delayMs, undefined, { signal: stopping.signal });
      } catch {
        throw new VendorUnavailableError(name, 'shutdown', attempt, { detail: 'provider shut down' });
      }
    }
  };

  const breaker = createBreaker(
    fetchWithRetries,
    options.breaker,
    {
      name: `market-data:${name}`,
      messages: {
        open: `market-data vendor circuit open: failing fast for ${options.breaker.resetTimeoutMs} ms`,
        halfOpen: 'market-data vendor circuit half-open: letting one trial call through',
        close: 'market-data vendor circuit closed: vendor answering again',
      },
    },
    log,
  );

  const client: VendorHttpClient = Object.assign(
    breakerControls(breaker, stopping, () => stoppedClients.add(client)),
    {
      name,
      async request<T>(request: VendorRequest, parse: (body: unknown) => T): Promise<T> {
        if (stopping.signal.aborted) throw new VendorUnavailableError(name, 'shutdown', 0, { detail: 'provider shut down' });
        try {
          return (await breaker.fire(request, parse)) as T;
        } catch (error) {
          if (error instanceof VendorUnavailableError) throw error;
          const refusal = breakerRefusal(error);
          if (refusal === 'open')
            throw new VendorUnavailableError(name, 'breaker-open', 0, { detail: 'circuit breaker open, failing fast' });
          if (refusal === 'shutdown') throw new VendorUnavailableError(name, 'shutdown', 0, { detail: 'provider shut down' });
          throw error;
        }
      },
    },
  );
  return client;
}

function statusFailure(response: Response): Attempt {
  const status = response.status;
  const retryable = status === 429 || status >= 500;
  const retryAfterMs = status === 429 || status === 503 ? retryAfterSeconds(response.headers.get('retry-after')) : undefined;
  const detail = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
  return retryAfterMs === undefined
    ? { ok: false, reason: 'http-status', retryable, detail, status }
    : { ok: false, reason: 'http-status', retryable, detail, status, retryAfterMs };
}

/** Only the delay-seconds form; an HTTP-date (clock skew, rarely sent for rate limits) falls back to backoff. */
function retryAfterSeconds(header: string | null): number | undefined {
  const value = header?.trim();
  return value && /^\d+$/.test(value) ? Number(value) * 1000 : undefined;
}

/** Holds the vendor's answer to the provider contract, whatever order or extras the vendor sends. */
function conform(parsed: Map<string, Bar[]>, symbols: readonly string[], { lookback, until }: FetchBarsOptions): Map<string, Bar[]> {
  const result = new Map<string, Bar[]>();
  for (const symbol of symbols) {
    const bars = parsed.get(symbol);
    if (!bars || result.has(symbol)) continue;
    const kept = (until ? bars.filter((bar) => bar.time <= until) : [...bars]).sort((a, b) => a.time.getTime() - b.time.getTime());
    result.set(symbol, kept.slice(Math.max(0, kept.length - lookback)));
  }
  return result;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // undici reports every network failure as "fetch failed"; the cause says which (ECONNREFUSED, reset...).
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function validate(options: VendorHttpClientOptions): void {
  const problems: string[] = [];
  const { timeoutMs, retries, backoffMs, breaker } = options;
  if (typeof options.name !== 'string' || options.name.trim() === '') problems.push('name must be a non-empty string');
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
    problems.push(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  if (!(Number.isInteger(retries) && retries >= 0))
    problems.push(`retries must be a non-negative integer (extra attempts after the first), got ${retries}`);
  if (!(Number.isFinite(backoffMs) && backoffMs >= 0))
    problems.push(`backoffMs must be a non-negative number of milliseconds, got ${backoffMs}`);
  problems.push(...breakerProblems(breaker));
  if (problems.length > 0) throw new RangeError(`vendor-http provider "${options.name}": ${problems.join('; ')}`);
}
