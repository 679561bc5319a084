import { STREAM_AUTH_ERRORS, STREAM_ERRORS, parseBarsPage, parseStreamFrame, sessionDate, type AlpacaBar } from './alpaca-protocol.js';
import {
  createLiveVendorFeed,
  type LiveVendorFeed,
  type LiveVendorListener,
  type StreamEvent,
  type VendorAdapter,
  type VendorFeedOptions,
} from './live-vendor.js';
import type { Bar } from './market-data.js';
import { VendorUnavailableError } from './vendor-http.js';

export { REBASE_MOVE } from './live-vendor.js';

/**
 * Alpaca Market Data v2 as a live source for the bars store, on the shared live-vendor base
 * (live-vendor.ts: catch-ups, reconnects, gap backfill, interest following, health). What is Alpaca's
 * own is here: the REST reader (`GET /v2/stocks/bars`, many symbols per request, every page) and the
 * stream's protocol (`connected` → `auth` → `authenticated` → `subscribe` `dailyBars` → `d` bars).
 *
 * Prices: `close`, `open`, `high`, `low` and `volume` are as traded (`adjustment=raw`); `adjClose` is
 * the close with splits and dividends applied (`adjustment=all`), so returns come from adjusted closes
 * as with imported CSVs. Every catch-up re-reads the window in both forms and rewrites it, so a split
 * re-bases the stored adjusted closes instead of looking like a crash. A stream bar has no adjustment:
 * its adjusted close is its close; one that jumps from the stored adjusted close makes the base ask
 * REST first, which re-bases the window if a corporate action explains the move. The stream sends
 * the day so far as a daily bar too: the base stores daily bars only once their session has closed.
 */
export interface AlpacaFeedOptions extends VendorFeedOptions {
  readonly keyId: string;
  readonly secretKey: string;
  readonly feed: 'iex' | 'sip';
  /** REST base, without `/v2`. */
  readonly dataUrl: string;
  /** Full stream URL, feed included. */
  readonly streamUrl: string;
}

export type AlpacaListener = LiveVendorListener;
export type AlpacaFeed = LiveVendorFeed;

/** Symbols per REST request: keeps the URL short (Alpaca pages by data points, not by symbols). */
const SYMBOLS_PER_REQUEST = 100;
/** Largest page Alpaca serves. */
const PAGE_LIMIT = 10_000;
const MAX_PAGES = 1_000;
const SOURCE = 'alpaca';

export function createAlpacaFeed(options: AlpacaFeedOptions): AlpacaFeed {
  return createLiveVendorFeed({ ...options, adapter: alpacaAdapter(options) });
}

export function alpacaAdapter(
  options: Pick<AlpacaFeedOptions, 'keyId' | 'secretKey' | 'feed' | 'dataUrl' | 'streamUrl' | 'http'>,
): VendorAdapter {
  const { http } = options;
  const headers = { 'APCA-API-KEY-ID': options.keyId, 'APCA-API-SECRET-KEY': options.secretKey, accept: 'application/json' };
  const keysHint = `check ALPACA_KEY_ID / ALPACA_SECRET_KEY and ALPACA_FEED (${options.feed}) for your plan`;

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

  const toBar = (symbol: string, bar: AlpacaBar, adjClose: number): Bar => ({
    symbol,
    time: sessionDate(bar.t),
    open: bar.o,
    high: bar.h,
    low: bar.l,
    close: bar.c,
    adjClose,
    volume: bar.v,
    source: SOURCE,
  });

  const read = (text: string): StreamEvent[] => {
    const events: StreamEvent[] = [];
    const daily: Bar[] = [];
    for (const message of parseStreamFrame(text)) {
      switch (message.T) {
        case 'd':
          daily.push(toBar(message.S, message.bar, message.bar.c));
          break;
        case 'success':
          // The auth message carries the secret: it is sent, never logged.
          if (message.msg === 'connected')
            events.push({ kind: 'send', text: JSON.stringify({ action: 'auth', key: options.keyId, secret: options.secretKey }) });
          else if (message.msg === 'authenticated') events.push({ kind: 'authenticated' });
          break;
        case 'subscription':
          events.push({ kind: 'subscribed' });
          break;
        case 'error': {
          const problem = `stream error ${message.code} ${message.msg || (STREAM_ERRORS[message.code] ?? 'error')}`;
          events.push({
            kind: 'error',
            problem,
            hint: keysHint,
            auth: STREAM_AUTH_ERRORS.has(message.code),
            symbolLimit: message.code === 405,
            close: message.code === 406 || message.code === 407,
          });
          break;
        }
        case 'malformed':
          events.push({ kind: 'malformed', reason: message.reason });
          break;
        default:
          break;
      }
    }
    if (daily.length > 0) events.push({ kind: 'bars', bars: daily });
    return events;
  };

  return {
    name: SOURCE,
    label: `feed ${options.feed}`,
    symbolsVariable: 'ALPACA_SYMBOLS',
    finalAfterMs: 0,
    async fetchDailyBars(symbols, start) {
      const raw = await fetchDaily(symbols, start, 'raw');
      const adjusted = await fetchDaily(symbols, start, 'all');
      const bars: Bar[] = [];
      for (const [symbol, list] of raw) {
        const adjustedClose = new Map((adjusted.get(symbol) ?? []).map((bar) => [sessionDate(bar.t).getTime(), bar.c]));
        for (const bar of list) bars.push(toBar(symbol, bar, adjustedClose.get(sessionDate(bar.t).getTime()) ?? bar.c));
      }
      return bars;
    },
    explainRestFailure: (error) => describeRestFailure(error),
    stream: {
      url: options.streamUrl,
      read,
      subscribe: (symbols) => JSON.stringify({ action: 'subscribe', dailyBars: symbols }),
      unsubscribe: (symbols) => JSON.stringify({ action: 'unsubscribe', dailyBars: symbols }),
    },
  };
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
