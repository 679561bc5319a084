import WebSocket from 'ws';
import type { Logger } from '../logger/logger.js';
import {
  STREAM_AUTH_ERRORS,
  STREAM_ERRORS,
  isFinalSession,
  parseBarsPage,
  parseStreamFrame,
  sessionClose,
  sessionDate,
  weekdaysBetween,
  type AlpacaBar,
  type StreamMessage,
} from './alpaca-protocol.js';
import { validateBars } from './bar-rules.js';
import type { BarsRepository } from './bars-repository.js';
import { InvalidBarsError, createIngestFeed, type MarketFeed } from './feed.js';
import { SYMBOL_PATTERN, type Bar } from './market-data.js';
import { VendorUnavailableError, type VendorHttpClient } from './vendor-http.js';

/**
 * Alpaca Market Data v2 as a live source for the bars store: a REST catch-up (`GET /v2/stocks/bars`,
 * many symbols per request, every page) fills the store, then the real-time stream's daily bars (`d`)
 * are stored and announced as they come. Queries keep reading the bars store, so a vendor outage
 * never fails a query: it serves the bars it has, and readiness says why they are not moving.
 *
 * Prices: `close`, `open`, `high`, `low` and `volume` are as traded (`adjustment=raw`); `adjClose` is
 * the close with splits and dividends applied (`adjustment=all`), so returns come from adjusted closes
 * as with imported CSVs. Every catch-up re-reads the whole backfill window in both forms and rewrites
 * it, so a split re-bases the stored adjusted closes instead of looking like a crash. A stream bar has
 * no adjustment: its adjusted close is its close, which is right until the next corporate action; a
 * stream bar that moves more than {@link REBASE_MOVE}× from the stored adjusted close triggers a
 * catch-up first, which re-bases the window if a split or dividend explains the move.
 *
 * No bar missing, none stored twice: bars are upserted by (symbol, session date), and the stream
 * never trusts itself to be complete. After every (re)subscription, when a stream bar skips a
 * weekday, and after every session close, a REST catch-up runs; catch-ups and stream bars go through
 * one queue, so they never interleave. A catch-up of a few sessions announces them one session at a
 * time and waits for the listener each time, so live predictions for the missed bars are published
 * in order. Daily bars whose session has not closed yet (the stream sends the day so far) are
 * neither stored nor announced: the catch-up after the close stores the final one.
 */
export interface AlpacaFeedOptions {
  readonly keyId: string;
  readonly secretKey: string;
  readonly feed: 'iex' | 'sip';
  /** REST base, without `/v2`. */
  readonly dataUrl: string;
  /** Full stream URL, feed included. */
  readonly streamUrl: string;
  /** Calendar days a catch-up reads back from today. */
  readonly backfillDays: number;
  /** Always backfilled and subscribed (the configured universe); {@link AlpacaFeed.follow} adds more. */
  readonly symbols: readonly string[];
  readonly store: Pick<BarsRepository, 'upsert' | 'fetchBars'>;
  /** Timeouts, retries (429 with Retry-After, 5xx), and the vendor's one circuit breaker. */
  readonly http: VendorHttpClient;
  readonly logger: Logger;
  /** Stream reconnect backoff bounds; defaults 1 s and 60 s. */
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  /** Ping interval; a connection that has not answered the previous ping is dropped. Default 30 s. */
  readonly pingMs?: number;
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** Told about newly stored bars; a returned promise is awaited before the next bars are announced. */
export type AlpacaListener = (bars: readonly Bar[]) => void | Promise<unknown>;

export interface AlpacaFeed extends MarketFeed {
  start(listener: AlpacaListener): void;
  /** One REST catch-up now (the start-up backfill). Resolves false, never rejects, when the vendor refused; the reason is in {@link health}. */
  backfill(): Promise<boolean>;
  /** The vendor's state for readiness: ok only while the stream is subscribed and the last catch-up worked. */
  health(): { status: 'ok' | 'degraded'; detail: string };
  /** Resolves once everything received so far is stored and announced. */
  idle(): Promise<void>;
  /**
   * The symbols subscribers want now (the interest set): ones outside the universe are subscribed and
   * backfilled, ones no longer wanted are unsubscribed; the configured universe always stays. The
   * plan's symbol limit is the vendor's: past it the stream answers 405, which is logged and in health.
   */
  follow(wanted: readonly string[]): void;
  /** What is subscribed (or will be, once connected). */
  readonly symbols: readonly string[];
}

/** A stream bar this far from the stored adjusted close (either way) asks REST for corporate actions first. */
export const REBASE_MOVE = 1.5;
/** Symbols per REST request: keeps the URL short (Alpaca pages by data points, not by symbols). */
const SYMBOLS_PER_REQUEST = 100;
/** Largest page Alpaca serves. */
const PAGE_LIMIT = 10_000;
/** A catch-up finding more new sessions than this announces once (a restart after a long stop), not per session. */
const MAX_STEPPED_SESSIONS = 10;
const MAX_PAGES = 1_000;
const DAY_MS = 86_400_000;
/** After a session's close, the final daily bar is asked for this much later. */
const AFTER_CLOSE_MS = 15 * 60_000;
const SOURCE = 'alpaca';
/** Where a symbol with no recent bars is looked up from (before any data Alpaca serves). */
const DEEP_HISTORY_START = new Date('2000-01-01T00:00:00Z');

export function createAlpacaFeed(options: AlpacaFeedOptions): AlpacaFeed {
  const { store, http } = options;
  const universe = new Set(options.symbols);
  let symbols: readonly string[] = [...universe];
  const log = options.logger.child({ provider: SOURCE });
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const { minMs, maxMs } = options.reconnect ?? { minMs: 1_000, maxMs: 60_000 };
  const ingest = createIngestFeed(SOURCE, store);
  ingest.start(() => {}); // announcing is done here, awaited, not by the ingest feed
  const latest = new Map<string, Bar>();

  let listener: AlpacaListener | undefined;
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
  let lastSession: Date | undefined;

  const enqueue = (what: string, task: () => Promise<unknown>): Promise<void> => {
    const run = queue.then(() => (stopped ? undefined : task()));
    queue = run.catch((error: unknown) => log.warn({ err: error }, `alpaca: ${what} failed`));
    return queue.then(() => undefined);
  };

  const announce = async (bars: readonly Bar[]) => {
    for (const bar of bars) if (!lastSession || bar.time > lastSession) lastSession = bar.time;
    if (listener && !stopped) await listener(bars);
  };

  // ---- REST ----------------------------------------------------------------------------------

  const headers = { 'APCA-API-KEY-ID': options.keyId, 'APCA-API-SECRET-KEY': options.secretKey, accept: 'application/json' };

  const fetchDaily = async (which: readonly string[], start: Date, adjustment: 'raw' | 'all'): Promise<Map<string, AlpacaBar[]>> => {
    const result = new Map<string, AlpacaBar[]>();
    for (let i = 0; i < which.length; i += SYMBOLS_PER_REQUEST) {
      const chunk = which.slice(i, i + SYMBOLS_PER_REQUEST);
      let token: string | undefined;
      const seen = new Set<string>();
      for (let pages = 1; ; pages++) {
        const url = new URL(`${options.dataUrl}/v2/stocks/bars`);
        url.searchParams.set('symbols', chunk.join(','));
        url.searchParams.set('timeframe', '1Day');
        url.searchParams.set('start', start.toISOString().slice(0, 10));
        url.searchParams.set('limit', String(PAGE_LIMIT));
        url.searchParams.set('adjustment', adjustment);
        url.searchParams.set('feed', options.feed);
        url.searchParams.set('sort', 'asc');
        if (token) url.searchParams.set('page_token', token);
        const page = await http.request({ url: url.toString(), init: { headers } }, parseBarsPage);
        for (const [symbol, bars] of page.bars) {
          const list = result.get(symbol);
          if (list) list.push(...bars);
          else result.set(symbol, [...bars]);
        }
        token = page.nextPageToken;
        if (!token) break;
        // A token seen before would page forever.
        if (seen.has(token) || pages >= MAX_PAGES)
          throw new Error(`alpaca: pagination does not end (page ${pages}, token repeated or over ${MAX_PAGES} pages)`);
        seen.add(token);
      }
    }
    return result;
  };

  /** Raw and adjusted answers joined per (symbol, session); sessions still open are left out. */
  const joinBars = (raw: Map<string, AlpacaBar[]>, adjusted: Map<string, AlpacaBar[]>, at: Date): Bar[] => {
    const bars: Bar[] = [];
    for (const symbol of symbols) {
      const adjustedClose = new Map<number, number>();
      for (const bar of adjusted.get(symbol) ?? []) adjustedClose.set(sessionDate(bar.t).getTime(), bar.c);
      const bySession = new Map<number, Bar>();
      for (const bar of raw.get(symbol) ?? []) {
        const time = sessionDate(bar.t);
        if (!isFinalSession(time, at)) continue;
        const adjClose = adjustedClose.get(time.getTime()) ?? bar.c;
        bySession.set(time.getTime(), {
          symbol,
          time,
          open: bar.o,
          high: bar.h,
          low: bar.l,
          close: bar.c,
          adjClose,
          volume: bar.v,
          source: SOURCE,
        });
      }
      bars.push(...[...bySession.values()].sort((a, b) => a.time.getTime() - b.time.getTime()));
    }
    return bars;
  };

  /** Stores bars that pass the serving rules; refused ones are logged and left out, never the whole batch. */
  const store_ = async (bars: readonly Bar[]): Promise<Bar[]> => {
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
    log.warn({ refused: refused.length, first: refused.slice(0, 5) }, 'alpaca: bars refused by the serving rules; not stored');

  const loadLatest = async () => {
    const newest = await store.fetchBars(symbols, { lookback: 1 });
    for (const [symbol, list] of newest) if (list[0]) latest.set(symbol, list[0]);
  };

  /**
   * Reads the backfill window over REST and stores it. Sessions after the newest stored bar of their
   * symbol are new: announced one session at a time when there are a few (a gap), once when many.
   */
  const catchUp = async (): Promise<boolean> => {
    try {
      await loadLatest();
      const at = now();
      // The window, reaching back to the day after the oldest "newest stored bar": a gap is filled whole.
      let start = Math.floor(at.getTime() / DAY_MS) * DAY_MS - options.backfillDays * DAY_MS;
      for (const symbol of symbols) {
        const known = latest.get(symbol);
        if (known) start = Math.min(start, known.time.getTime() + DAY_MS);
      }
      const raw = await fetchDaily(symbols, new Date(start), 'raw');
      const adjusted = await fetchDaily(symbols, new Date(start), 'all');
      // Symbols with nothing stored and nothing in the window may have a history that ends earlier
      // (a delisted ticker, a test vendor's fixed dates): read all of it once they are asked for.
      const unseen = symbols.filter((symbol) => !latest.has(symbol) && !raw.get(symbol)?.length);
      if (unseen.length > 0) {
        for (const [symbol, list] of await fetchDaily(unseen, DEEP_HISTORY_START, 'raw')) raw.set(symbol, list);
        for (const [symbol, list] of await fetchDaily(unseen, DEEP_HISTORY_START, 'all')) adjusted.set(symbol, list);
      }
      const bars = joinBars(raw, adjusted, at);
      const known = new Map([...latest].map(([symbol, bar]) => [symbol, bar.time.getTime()]));
      const isNew = (bar: Bar) => bar.time.getTime() > (known.get(bar.symbol) ?? -Infinity);
      const old = bars.filter((bar) => !isNew(bar));
      const fresh = bars.filter(isNew);
      await store_(old);
      const sessions = [...new Set(fresh.map((bar) => bar.time.getTime()))].sort((a, b) => a - b);
      if (sessions.length > MAX_STEPPED_SESSIONS) {
        const stored = await store_(fresh);
        if (stored.length > 0) await announce(stored);
      } else {
        for (const session of sessions) {
          const stored = await store_(fresh.filter((bar) => bar.time.getTime() === session));
          if (stored.length > 0) await announce(stored);
        }
      }
      if (restProblem) log.info({ bars: bars.length, fresh: fresh.length, sessions: sessions.length }, 'alpaca: REST catch-up succeeded');
      else log.debug({ bars: bars.length, fresh: fresh.length, sessions: sessions.length }, 'alpaca: REST catch-up done');
      restProblem = undefined;
      clearTimeout(catchUpTimer);
      catchUpTimer = undefined;
      return true;
    } catch (error) {
      restProblem = describeRestFailure(error);
      log.error({ reason: restProblem }, `alpaca: REST catch-up failed: ${restProblem}`);
      scheduleCatchUp(backoff(reconnects + 1, isAuthFailure(error)));
      return false;
    }
  };

  const scheduleCatchUp = (delayMs: number) => {
    if (stopped || catchUpTimer) return;
    catchUpTimer = setTimeout(() => {
      catchUpTimer = undefined;
      void enqueue('catch-up', catchUp);
    }, delayMs);
    catchUpTimer.unref();
  };

  /** The next session close (weekdays; a holiday costs one catch-up that finds nothing). */
  const scheduleAfterClose = () => {
    if (stopped) return;
    const at = now();
    let day = sessionDate(at);
    while ([0, 6].includes(day.getUTCDay()) || sessionClose(day).getTime() + AFTER_CLOSE_MS <= at.getTime())
      day = new Date(day.getTime() + DAY_MS);
    closeTimer = setTimeout(
      () => {
        void enqueue('after-close catch-up', catchUp);
        scheduleAfterClose();
      },
      Math.min(sessionClose(day).getTime() + AFTER_CLOSE_MS - at.getTime(), 2 ** 31 - 1),
    );
    closeTimer.unref();
  };

  // ---- stream --------------------------------------------------------------------------------

  /** Equal jitter: at least half the step, so a flapping vendor is not hammered. */
  const backoff = (attempt: number, long = false): number => {
    const step = long ? maxMs : Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
    return step / 2 + (random() * step) / 2;
  };

  const onDailyBars = async (messages: ReadonlyArray<{ S: string; bar: AlpacaBar }>) => {
    const at = now();
    const wanted = new Set(symbols);
    const candidates: Bar[] = [];
    for (const { S, bar } of messages) {
      if (!wanted.has(S)) continue;
      const time = sessionDate(bar.t);
      if (!isFinalSession(time, at)) continue; // the day so far; the after-close catch-up stores the final bar
      candidates.push({
        symbol: S,
        time,
        open: bar.o,
        high: bar.h,
        low: bar.l,
        close: bar.c,
        adjClose: bar.c,
        volume: bar.v,
        source: SOURCE,
      });
    }
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
      log.warn('alpaca: stream bars skip sessions or jump, and REST cannot fill in now; storing the stream bars alone');
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
    const stored = await store_([...fresh.values()]);
    if (stored.length > 0) await announce(stored);
  };

  const connect = () => {
    if (stopped) return;
    subscribed = false;
    const ws = new WebSocket(options.streamUrl, { handshakeTimeout: 10_000 });
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
      const bars: Array<{ S: string; bar: AlpacaBar }> = [];
      for (const message of parseStreamFrame(String(data))) {
        if (message.T === 'd') bars.push(message);
        else if (handleControl(ws, message)) authFailed = true;
      }
      if (bars.length > 0) void enqueue('stream bars', () => onDailyBars(bars));
    });
    ws.on('error', (error) => log.warn({ reason: error.message }, `alpaca: stream error: ${error.message}`));
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
        `alpaca: stream closed (${streamProblem}); reconnecting in ${Math.round(delayMs)} ms`,
      );
      reconnectTimer = setTimeout(connect, delayMs);
      reconnectTimer.unref();
    });
  };

  /** True when the stream refused our keys. */
  const handleControl = (ws: WebSocket, message: StreamMessage): boolean => {
    switch (message.T) {
      case 'success':
        // The auth message carries the secret: it is sent, never logged.
        if (message.msg === 'connected') ws.send(JSON.stringify({ action: 'auth', key: options.keyId, secret: options.secretKey }));
        else if (message.msg === 'authenticated') ws.send(JSON.stringify({ action: 'subscribe', dailyBars: symbols }));
        return false;
      case 'subscription':
        if (subscribed) {
          streamProblem = undefined; // a later change (follow) was accepted
        } else {
          subscribed = true;
          reconnects = 0;
          streamProblem = undefined;
          log.info({ dailyBars: message.dailyBars.length, feed: options.feed }, 'alpaca: stream subscribed; catching up over REST');
          // Whatever was published while we were not listening comes from REST.
          void enqueue('catch-up after subscribing', catchUp);
        }
        return false;
      case 'error': {
        const what = STREAM_ERRORS[message.code] ?? 'error';
        streamProblem = `stream error ${message.code} ${message.msg || what}`;
        if (STREAM_AUTH_ERRORS.has(message.code)) {
          log.error(
            { code: message.code },
            `alpaca: ${streamProblem}: check ALPACA_KEY_ID / ALPACA_SECRET_KEY and ALPACA_FEED (${options.feed}) for your plan`,
          );
          ws.close();
          return true;
        }
        if (message.code === 405)
          log.error(
            { code: 405, symbols: symbols.length },
            `alpaca: ${streamProblem}: the plan allows fewer symbols than the ${symbols.length} subscribed (ALPACA_SYMBOLS and what subscribers ask for)`,
          );
        else log.warn({ code: message.code }, `alpaca: ${streamProblem}`);
        if (message.code === 406 || message.code === 407) ws.close();
        return false;
      }
      case 'malformed':
        log.warn({ reason: message.reason }, 'alpaca: malformed stream message skipped');
        return false;
      default:
        return false;
    }
  };

  return {
    name: SOURCE,
    start(next) {
      if (listener) throw new Error('alpaca feed: start() was called twice');
      listener = next;
      connect();
      scheduleAfterClose();
    },
    backfill: () => {
      let result = false;
      return enqueue('backfill', async () => (result = await catchUp())).then(() => result);
    },
    health() {
      const problems = [restProblem, streamProblem ?? (listener && !subscribed ? 'stream not subscribed yet' : undefined)].filter(Boolean);
      const last =
        lastSession ?? [...latest.values()].reduce<Date | undefined>((max, bar) => (!max || bar.time > max ? bar.time : max), undefined);
      const tail = `${symbols.length} symbols, feed ${options.feed}, newest session ${last ? last.toISOString().slice(0, 10) : 'none'}`;
      return problems.length === 0
        ? { status: 'ok', detail: `alpaca: streaming; ${tail}` }
        : { status: 'degraded', detail: `alpaca: ${problems.join('; ')}; serving stored bars; ${tail}` };
    },
    idle: () => queue.then(() => undefined),
    get symbols() {
      return symbols;
    },
    follow(wanted) {
      const next = [...new Set([...universe, ...wanted.filter((symbol) => SYMBOL_PATTERN.test(symbol))])];
      const current = new Set(symbols);
      const added = next.filter((symbol) => !current.has(symbol));
      const kept = new Set(next);
      const removed = symbols.filter((symbol) => !kept.has(symbol));
      if (added.length === 0 && removed.length === 0) return;
      symbols = next;
      log.info({ added, removed, symbols: next.length }, 'alpaca: following what subscribers want');
      if (socket && subscribed) {
        if (added.length > 0) socket.send(JSON.stringify({ action: 'subscribe', dailyBars: added }));
        if (removed.length > 0) socket.send(JSON.stringify({ action: 'unsubscribe', dailyBars: removed }));
      }
      if (added.length > 0) void enqueue('catch-up for new symbols', catchUp);
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

/** A log line and readiness detail that say what to do; never a key. */
function describeRestFailure(error: unknown): string {
  if (error instanceof VendorUnavailableError) {
    if (error.status === 401 || error.status === 403)
      return `REST auth failed (HTTP ${error.status}): check ALPACA_KEY_ID / ALPACA_SECRET_KEY and ALPACA_FEED for your plan`;
    if (error.status === 429) return `REST throttled (HTTP 429 after ${error.attempts} attempt(s)); retrying later`;
    return `REST ${error.message}`;
  }
  return `REST ${error instanceof Error ? error.message : String(error)}`;
}
