// Over 400 lines: one lifecycle (a queue shared by catch-ups, the stream and interest following, and their
// timers and health) that every vendor shares; split up, each part would reach into the others' state.
import WebSocket from 'ws';
import type { Logger } from '../logger/logger.js';
import { sessionClose, sessionDate, weekdaysBetween } from './trading-calendar.js';
import { validateBars } from './bar-rules.js';
import type { BarsRepository } from './bars-repository.js';
import { InvalidBarsError, createIngestFeed, type MarketFeed } from './feed.js';
import { SYMBOL_PATTERN, type Bar } from './market-data.js';
import { VendorUnavailableError, type VendorHttpClient } from './vendor-http.js';

/**
 * What every live market-data vendor does, written once; a vendor (alpaca.ts, polygon.ts) supplies
 * only its REST reader and its stream's wire protocol ({@link VendorAdapter}), so the gateway treats
 * every vendor alike (no vendor-specific branch outside the adapter).
 *
 * - A REST catch-up reads the backfill window (reaching back to the day after each symbol's newest
 *   stored bar, so a gap is filled whole), upserts it through the serving rules, and announces the
 *   sessions that are new: one session at a time when a few (a gap after a disconnect, published in
 *   order), once when many (a restart after a long stop). Bars are keyed by (symbol, session date),
 *   so nothing is stored twice however often a catch-up re-reads.
 * - Catch-ups and stream events go through one queue, so they never interleave.
 * - The stream (when the vendor and plan have one) reconnects with jittered backoff, and every
 *   (re)subscription is followed by a catch-up: what was published while we were not listening comes
 *   from REST. Without a stream the vendor is polled on its schedule: a catch-up after every session.
 * - Daily bars of a session not yet final (before the vendor's `finalAfterMs` past the 16:00 New
 *   York close) are neither stored nor announced; the catch-up scheduled after that moment stores them.
 *   Weekends never schedule one; a holiday costs one catch-up that finds nothing, not an outage.
 * - The interest set (what subscribers want) is followed, bounded by `maxSymbols`: past it the extra
 *   symbols are refused with an error log and a degraded readiness naming the limit.
 * - Readiness ({@link LiveVendorFeed.health}) names the REST and stream state and why; keys are sent,
 *   never logged (the vendor's `explain` words failures without them).
 */
export interface VendorAdapter {
  /** `alpaca`, `polygon`: the bars' `source` and the log prefix. */
  readonly name: string;
  /** Shown in readiness after the symbol count (`feed iex`, `delayed stream`). */
  readonly label: string;
  /** The variable listing the configured universe, named in error lines. */
  readonly symbolsVariable: string;
  /** How long after the 16:00 New York close the vendor's daily bar is final; the after-close catch-up runs {@link SETTLE_MS} later. */
  readonly finalAfterMs: number;
  /**
   * Daily bars of `symbols` for sessions from `start` that are final at `at`, with `close` as traded and
   * `adjClose` adjusted for splits (and dividends when the vendor has them). Rejects on any failure.
   */
  fetchDailyBars(symbols: readonly string[], start: Date, at: Date): Promise<Bar[]>;
  /** A log line and readiness detail for a failed REST call that says what to do; never a key. */
  explainRestFailure(error: unknown): string;
  /** Absent: the vendor (or plan) has no stream, and it is polled after every session. */
  readonly stream?: VendorStream | undefined;
}

export interface VendorStream {
  readonly url: string;
  /** One text frame in, what it means out. */
  read(text: string): StreamEvent[];
  subscribe(symbols: readonly string[]): string;
  unsubscribe(symbols: readonly string[]): string;
}

export type StreamEvent =
  /** A protocol reply (the auth message, carrying the key): sent, never logged. */
  | { readonly kind: 'send'; readonly text: string }
  /** Keys accepted: the base subscribes what it follows. */
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'subscribed' }
  /** The vendor's own daily bars (`adjClose` = `close`); bars of sessions not final yet are dropped. */
  | { readonly kind: 'bars'; readonly bars: readonly Bar[] }
  /** The symbol traded in the session of `time` (an intraday aggregate): every earlier session is final. */
  | { readonly kind: 'traded'; readonly symbol: string; readonly time: Date }
  | {
      readonly kind: 'error';
      readonly problem: string;
      /** What to check, for the log line. */
      readonly hint?: string;
      /** Keys or plan refused: reconnect with the longest backoff. */
      readonly auth?: boolean;
      /** The plan's symbol limit. */
      readonly symbolLimit?: boolean;
      /** The vendor will not serve this connection any more: close it. */
      readonly close?: boolean;
    }
  | { readonly kind: 'malformed'; readonly reason: string };

/** What every vendor's feed is built with, beside its own keys and URLs (alpaca.ts, polygon.ts). */
export type VendorFeedOptions = Omit<LiveVendorOptions, 'adapter'> & {
  /** Timeouts, retries (429 with Retry-After, 5xx), and the vendor's circuit breaker. */
  readonly http: VendorHttpClient;
};

export interface LiveVendorOptions {
  readonly adapter: VendorAdapter;
  /** Calendar days a catch-up reads back from today. */
  readonly backfillDays: number;
  /** Always backfilled and followed (the configured universe); {@link LiveVendorFeed.follow} adds more. */
  readonly symbols: readonly string[];
  /** Most symbols followed at once (the plan's limit); default unbounded (the vendor's own error tells). */
  readonly maxSymbols?: number | undefined;
  readonly store: Pick<BarsRepository, 'upsert' | 'fetchBars'>;
  readonly logger: Logger;
  /** Stream reconnect backoff bounds; defaults 1 s and 60 s. */
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  /** Ping interval; a connection that has not answered the previous ping is dropped. Default 30 s. */
  readonly pingMs?: number;
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** Told about newly stored bars; a returned promise is awaited before the next bars are announced. */
export type LiveVendorListener = (bars: readonly Bar[]) => void | Promise<unknown>;

export interface LiveVendorFeed extends MarketFeed {
  start(listener: LiveVendorListener): void;
  /** One REST catch-up now (the start-up backfill). Resolves false, never rejects, when the vendor refused; the reason is in {@link health}. */
  backfill(): Promise<boolean>;
  /** The vendor's state for readiness: ok only while the stream is subscribed (or polling works) and the last catch-up worked. */
  health(): { status: 'ok' | 'degraded'; detail: string };
  /** Resolves once everything received so far is stored and announced. */
  idle(): Promise<void>;
  /**
   * The symbols subscribers want now (the interest set): ones outside the universe are subscribed and
   * backfilled, ones no longer wanted are unsubscribed; the configured universe always stays; past
   * `maxSymbols` the extra ones are refused (logged, and in health).
   */
  follow(wanted: readonly string[]): void;
  /** What is followed (subscribed, or will be once connected). */
  readonly symbols: readonly string[];
}

/** A stream bar this far from the stored adjusted close (either way) asks REST for corporate actions first. */
export const REBASE_MOVE = 1.5;
/** A catch-up finding more new sessions than this announces once (a restart after a long stop), not per session. */
const MAX_STEPPED_SESSIONS = 10;
const DAY_MS = 86_400_000;
/** After a session's bar is final, the vendor is asked for it this much later (its own batch jobs). */
export const SETTLE_MS = 15 * 60_000;
/** Where a symbol with no recent bars is looked up from. */
const DEEP_HISTORY_START = new Date('2000-01-01T00:00:00Z');

export function createLiveVendorFeed(options: LiveVendorOptions): LiveVendorFeed {
  const { store, adapter } = options;
  const name = adapter.name;
  const universe = [...new Set(options.symbols)];
  let symbols: readonly string[] = universe;
  const log = options.logger.child({ provider: name });
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const { minMs, maxMs } = options.reconnect ?? { minMs: 1_000, maxMs: 60_000 };
  const ingest = createIngestFeed(name, store);
  ingest.start(() => {}); // announcing is done here, awaited, not by the ingest feed
  const latest = new Map<string, Bar>();

  let listener: LiveVendorListener | undefined;
  let stopped = false;
  let queue: Promise<unknown> = Promise.resolve();
  let socket: WebSocket | undefined;
  let subscribed = false;
  let reconnects = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let catchUpTimer: NodeJS.Timeout | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  let restProblem: string | undefined = 'no catch-up yet';
  let streamProblem: string | undefined;
  let limitProblem: string | undefined;
  let lastSession: Date | undefined;
  /** Sessions a `traded` event already asked REST for, so a stream of intraday aggregates asks once. */
  const askedFor = new Set<string>();

  const enqueue = (what: string, task: () => Promise<unknown>): Promise<void> => {
    const run = queue.then(() => (stopped ? undefined : task()));
    queue = run.catch((error: unknown) => log.warn({ err: error }, `${name}: ${what} failed`));
    return queue.then(() => undefined);
  };

  const announce = async (bars: readonly Bar[]) => {
    for (const bar of bars) if (!lastSession || bar.time > lastSession) lastSession = bar.time;
    if (listener && !stopped) await listener(bars);
  };

  const isFinal = (session: Date, at: Date) => at.getTime() >= sessionClose(session).getTime() + adapter.finalAfterMs;

  /** Stores bars that pass the serving rules; refused ones are logged and left out, never the whole batch. */
  const keep = async (bars: readonly Bar[]): Promise<Bar[]> => {
    const { accepted, refused } = validateBars(bars, { now: now() });
    if (refused.length > 0) logRefused(refused.map((r) => ({ symbol: r.bar.symbol, time: r.bar.time, reason: r.reason })));
    let kept = accepted;
    try {
      await ingest.ingest(kept);
    } catch (error) {
      if (!(error instanceof InvalidBarsError)) throw error;
      // Refused against the stored bar before them (a jump from a bar outside the window): drop those.
      logRefused(error.refused.map((r) => ({ symbol: r.bar.symbol, time: r.bar.time, reason: r.reason })));
      const drop = new Set(error.refused.map((r) => r.bar));
      kept = kept.filter((bar) => !drop.has(bar));
      await ingest.ingest(kept);
    }
    for (const bar of kept) {
      const known = latest.get(bar.symbol);
      if (!known || bar.time >= known.time) latest.set(bar.symbol, bar);
    }
    return kept;
  };

  const logRefused = (refused: Array<{ symbol: string; time: Date; reason: string }>) =>
    log.warn({ refused: refused.length, first: refused.slice(0, 5) }, `${name}: bars refused by the serving rules; not stored`);

  const loadLatest = async () => {
    const newest = await store.fetchBars(symbols, { lookback: 1 });
    for (const [symbol, list] of newest) if (list[0]) latest.set(symbol, list[0]);
  };

  /** Only what is followed, final, and one bar per (symbol, session), ascending. */
  const conform = (bars: readonly Bar[], at: Date): Bar[] => {
    const wanted = new Set(symbols);
    const bySymbol = new Map<string, Map<number, Bar>>();
    for (const bar of bars) {
      if (!wanted.has(bar.symbol) || !isFinal(bar.time, at)) continue;
      const sessions = bySymbol.get(bar.symbol) ?? new Map<number, Bar>();
      sessions.set(bar.time.getTime(), bar);
      bySymbol.set(bar.symbol, sessions);
    }
    return [...bySymbol.values()].flatMap((sessions) => [...sessions.values()].sort((a, b) => a.time.getTime() - b.time.getTime()));
  };

  /**
   * A window catch-up re-reads the backfill window (re-basing adjusted closes after a corporate action);
   * a gap catch-up reads only from each symbol's newest stored session on, and widens to the window
   * when that session's adjusted close has changed on the vendor's side (a split or dividend since).
   */
  const catchUp = async (scope: 'window' | 'gap' = 'window'): Promise<boolean> => {
    try {
      await loadLatest();
      const at = now();
      const windowStart = Math.floor(at.getTime() / DAY_MS) * DAY_MS - options.backfillDays * DAY_MS;
      let gapStart = Infinity;
      let start = windowStart;
      for (const symbol of symbols) {
        const known = latest.get(symbol);
        gapStart = Math.min(gapStart, known ? known.time.getTime() : windowStart);
        if (known) start = Math.min(start, known.time.getTime() + DAY_MS);
      }
      let read = [...(await adapter.fetchDailyBars(symbols, new Date(scope === 'gap' ? gapStart : start), at))];
      if (scope === 'gap' && read.some((bar) => rebased(bar))) {
        log.info(`${name}: adjusted closes changed since the newest stored session (a corporate action); re-reading the window`);
        read = [...(await adapter.fetchDailyBars(symbols, new Date(start), at))];
      }
      // Symbols with nothing stored and nothing in the window may have a history that ends earlier
      // (a delisted ticker, a test vendor's fixed dates): read all of it once they are asked for.
      const found = new Set(read.map((bar) => bar.symbol));
      const unseen = symbols.filter((symbol) => !latest.has(symbol) && !found.has(symbol));
      if (unseen.length > 0) read.push(...(await adapter.fetchDailyBars(unseen, DEEP_HISTORY_START, at)));
      const bars = conform(read, at);
      const known = new Map([...latest].map(([symbol, bar]) => [symbol, bar.time.getTime()]));
      const isNew = (bar: Bar) => bar.time.getTime() > (known.get(bar.symbol) ?? -Infinity);
      const fresh = bars.filter(isNew);
      await keep(bars.filter((bar) => !isNew(bar)));
      const sessions = [...new Set(fresh.map((bar) => bar.time.getTime()))].sort((a, b) => a - b);
      if (sessions.length > MAX_STEPPED_SESSIONS) {
        const stored = await keep(fresh);
        if (stored.length > 0) await announce(stored);
      } else {
        for (const session of sessions) {
          const stored = await keep(fresh.filter((bar) => bar.time.getTime() === session));
          if (stored.length > 0) await announce(stored);
        }
      }
      const counts = { bars: bars.length, fresh: fresh.length, sessions: sessions.length };
      if (restProblem) log.info(counts, `${name}: REST catch-up succeeded`);
      else log.debug(counts, `${name}: REST catch-up done`);
      restProblem = undefined;
      clearTimeout(catchUpTimer);
      catchUpTimer = undefined;
      return true;
    } catch (error) {
      restProblem = adapter.explainRestFailure(error);
      log.error({ reason: restProblem }, `${name}: REST catch-up failed: ${restProblem}`);
      scheduleCatchUp(backoff(reconnects + 1, isAuthFailure(error)));
      return false;
    }
  };

  /** True when `bar` is a stored session whose adjusted close the vendor now gives differently. */
  const rebased = (bar: Bar): boolean => {
    const known = latest.get(bar.symbol);
    return !!known && known.time.getTime() === bar.time.getTime() && Math.abs(bar.adjClose / known.adjClose - 1) > 1e-6;
  };

  const scheduleCatchUp = (delayMs: number) => {
    if (stopped || catchUpTimer) return;
    catchUpTimer = setTimeout(() => {
      catchUpTimer = undefined;
      void enqueue('catch-up', () => catchUp());
    }, delayMs);
    catchUpTimer.unref();
  };

  /** The next weekday session's final moment; a holiday costs one catch-up that finds nothing. */
  const scheduleAfterClose = () => {
    if (stopped) return;
    const at = now();
    const finalAt = (day: Date) => sessionClose(day).getTime() + adapter.finalAfterMs + SETTLE_MS;
    let day = sessionDate(at);
    while ([0, 6].includes(day.getUTCDay()) || finalAt(day) <= at.getTime()) day = new Date(day.getTime() + DAY_MS);
    closeTimer = setTimeout(
      () => {
        void enqueue('after-close catch-up', () => catchUp('gap'));
        scheduleAfterClose();
      },
      Math.min(finalAt(day) - at.getTime(), 2 ** 31 - 1),
    );
    closeTimer.unref();
  };

  /** Equal jitter: at least half the step, so a flapping vendor is not hammered. */
  const backoff = (attempt: number, long = false): number => {
    const step = long ? maxMs : Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
    return step / 2 + (random() * step) / 2;
  };

  // ---- stream --------------------------------------------------------------------------------

  const onStreamBars = async (incoming: readonly Bar[]) => {
    const candidates = conform(incoming, now());
    if (candidates.length === 0) return;
    if (latest.size === 0) await loadLatest();
    const gap = candidates.some((bar) => {
      const known = latest.get(bar.symbol);
      if (!known || bar.time <= known.time) return false;
      const move = bar.close / known.adjClose;
      return weekdaysBetween(known.time, bar.time) > 0 || move > REBASE_MOVE || move < 1 / REBASE_MOVE;
    });
    if (gap && !(await catchUp())) {
      // REST is refusing: store what the stream says rather than nothing; the next catch-up completes it.
      log.warn(`${name}: stream bars skip sessions or jump, and REST cannot fill in now; storing the stream bars alone`);
    }
    // Duplicates and bars older than the newest stored are what REST already gave: never stored twice.
    const fresh = new Map<string, Bar>();
    for (const bar of candidates) {
      const known = latest.get(bar.symbol);
      if (known && bar.time <= known.time) continue;
      const other = fresh.get(bar.symbol);
      if (!other || bar.time > other.time) fresh.set(bar.symbol, bar);
    }
    if (fresh.size === 0) return;
    const stored = await keep([...fresh.values()]);
    if (stored.length > 0) await announce(stored);
  };

  /** An intraday aggregate of session D: D (if final by now) or the weekday before it should be stored. */
  const onTraded = async (traded: ReadonlyArray<{ symbol: string; time: Date }>) => {
    if (latest.size === 0) await loadLatest();
    const at = now();
    const wanted = new Set(symbols);
    let behind: string | undefined;
    for (const { symbol, time } of traded) {
      if (!wanted.has(symbol)) continue;
      const session = sessionDate(time);
      let expected = session;
      if (!isFinal(expected, at)) {
        do expected = new Date(expected.getTime() - DAY_MS);
        while ([0, 6].includes(expected.getUTCDay()));
      }
      const known = latest.get(symbol);
      const key = expected.toISOString().slice(0, 10);
      if ((!known || known.time < expected) && !askedFor.has(key)) behind = key;
    }
    if (!behind) return;
    askedFor.add(behind);
    log.info({ session: behind }, `${name}: the stream shows session ${behind} has closed and it is not stored; catching up over REST`);
    await catchUp('gap');
  };

  const connect = (stream: VendorStream) => {
    if (stopped) return;
    subscribed = false;
    const ws = new WebSocket(stream.url, { handshakeTimeout: 10_000 });
    socket = ws;
    let alive = true;
    let authFailed = false;
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, options.pingMs ?? 30_000);
    ping.unref();
    ws.on('pong', () => (alive = true));
    ws.on('message', (data) => {
      alive = true;
      const bars: Bar[] = [];
      const traded: Array<{ symbol: string; time: Date }> = [];
      for (const event of stream.read(String(data))) {
        if (event.kind === 'bars') bars.push(...event.bars);
        else if (event.kind === 'traded') traded.push(event);
        else if (handleControl(ws, stream, event)) authFailed = true;
      }
      if (bars.length > 0) void enqueue('stream bars', () => onStreamBars(bars));
      if (traded.length > 0) void enqueue('stream activity', () => onTraded(traded));
    });
    ws.on('error', (error) => log.warn({ reason: error.message }, `${name}: stream error: ${error.message}`));
    ws.on('close', (code) => {
      clearInterval(ping);
      if (socket === ws) socket = undefined;
      subscribed = false;
      if (stopped) return;
      reconnects++;
      const delayMs = backoff(reconnects, authFailed);
      streamProblem ??= 'stream disconnected';
      log.warn(
        { code, delayMs: Math.round(delayMs), attempt: reconnects },
        `${name}: stream closed (${streamProblem}); reconnecting in ${Math.round(delayMs)} ms`,
      );
      reconnectTimer = setTimeout(() => connect(stream), delayMs);
      reconnectTimer.unref();
    });
  };

  /** True when the stream refused our keys. */
  const handleControl = (ws: WebSocket, stream: VendorStream, event: Exclude<StreamEvent, { kind: 'bars' | 'traded' }>): boolean => {
    switch (event.kind) {
      case 'send':
        ws.send(event.text);
        return false;
      case 'authenticated':
        ws.send(stream.subscribe(symbols));
        return false;
      case 'subscribed':
        if (!subscribed) {
          subscribed = true;
          reconnects = 0;
          log.info({ symbols: symbols.length }, `${name}: stream subscribed; catching up over REST`);
          // Whatever was published while we were not listening comes from REST.
          void enqueue('catch-up after subscribing', () => catchUp('gap'));
        }
        streamProblem = undefined;
        return false;
      case 'error': {
        streamProblem = event.problem;
        if (event.auth) {
          log.error({ problem: event.problem }, `${name}: ${event.problem}: ${event.hint ?? 'check the keys and plan'}`);
          ws.close();
          return true;
        }
        if (event.symbolLimit) {
          log.error(
            { problem: event.problem, symbols: symbols.length },
            `${name}: ${event.problem}: the plan allows fewer symbols than the ${symbols.length} subscribed ` +
              `(${adapter.symbolsVariable} and what subscribers ask for)`,
          );
        } else log.warn({ problem: event.problem }, `${name}: ${event.problem}`);
        if (event.close) ws.close();
        return false;
      }
      case 'malformed':
        log.warn({ reason: event.reason }, `${name}: malformed stream message skipped`);
        return false;
    }
  };

  return {
    name,
    start(next) {
      if (listener) throw new Error(`${name} feed: start() was called twice`);
      listener = next;
      if (adapter.stream) connect(adapter.stream);
      scheduleAfterClose();
    },
    backfill: () => {
      let result = false;
      return enqueue('backfill', async () => (result = await catchUp('window'))).then(() => result);
    },
    health() {
      const streamState = adapter.stream
        ? (streamProblem ?? (listener && !subscribed ? 'stream not subscribed yet' : undefined))
        : undefined;
      const problems = [restProblem, streamState, limitProblem].filter(Boolean);
      const last =
        lastSession ?? [...latest.values()].reduce<Date | undefined>((max, bar) => (!max || bar.time > max ? bar.time : max), undefined);
      const tail = `${symbols.length} symbols, ${adapter.label}, newest session ${last ? last.toISOString().slice(0, 10) : 'none'}`;
      const mode = adapter.stream ? 'streaming' : 'polling after each session close (no stream)';
      return problems.length === 0
        ? { status: 'ok', detail: `${name}: ${mode}; ${tail}` }
        : { status: 'degraded', detail: `${name}: ${problems.join('; ')}; serving stored bars; ${tail}` };
    },
    idle: () => queue.then(() => undefined),
    get symbols() {
      return symbols;
    },
    follow(wanted) {
      const extra = [...new Set(wanted.filter((symbol) => SYMBOL_PATTERN.test(symbol) && !universe.includes(symbol)))];
      const room = Math.max(0, (options.maxSymbols ?? Infinity) - universe.length);
      const refused = extra.slice(room);
      const next = [...universe, ...extra.slice(0, room)];
      const problem =
        refused.length > 0
          ? `symbol limit: subscribers want ${universe.length + extra.length} symbols, over the limit of ${options.maxSymbols}; ` +
            `not following ${refused.slice(0, 5).join(', ')}${refused.length > 5 ? ', …' : ''}`
          : undefined;
      if (problem && problem !== limitProblem) log.error({ refused: refused.length, limit: options.maxSymbols }, `${name}: ${problem}`);
      limitProblem = problem;
      const current = new Set(symbols);
      const added = next.filter((symbol) => !current.has(symbol));
      const kept = new Set(next);
      const removed = symbols.filter((symbol) => !kept.has(symbol));
      if (added.length === 0 && removed.length === 0) return;
      symbols = next;
      log.info({ added, removed, symbols: next.length }, `${name}: following what subscribers want`);
      if (socket && subscribed && adapter.stream) {
        if (added.length > 0) socket.send(adapter.stream.subscribe(added));
        if (removed.length > 0) socket.send(adapter.stream.unsubscribe(removed));
      }
      if (added.length > 0) void enqueue('catch-up for new symbols', () => catchUp());
    },
    async stop() {
      stopped = true;
      clearTimeout(reconnectTimer);
      clearTimeout(catchUpTimer);
      clearTimeout(closeTimer);
      socket?.terminate();
      await ingest.stop();
      await queue;
    },
  };
}

function isAuthFailure(error: unknown): boolean {
  return error instanceof VendorUnavailableError && (error.status === 401 || error.status === 403);
}
