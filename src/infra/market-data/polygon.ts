import { newYorkDateOf, sessionDate } from './trading-calendar.js';
import { createLiveVendorFeed, type LiveVendorFeed, type StreamEvent, type VendorAdapter, type VendorFeedOptions } from './live-vendor.js';
import type { Bar } from './market-data.js';
import { PolygonRefusal, parseAggsPage, parsePolygonFrame, type AggsPage, type PolygonAgg } from './polygon-protocol.js';
import { VendorUnavailableError } from './vendor-http.js';

/**
 * Polygon.io stocks as a live source for the bars store, on the shared live-vendor base.
 *
 * Polygon is a different kind of vendor from Alpaca: REST is one ticker per request
 * (`/v2/aggs/ticker/{T}/range/1/day/{from}/{to}`, paged by `next_url`), and its WebSocket has no
 * daily bars, only intraday aggregates (`AM`, per minute). So the stream is used for what it can
 * honestly say: "this symbol is trading in session D", which means every session before D is over;
 * a symbol whose newest stored bar is older than that is caught up over REST. The final daily bar
 * always comes from REST, after the session and its extended hours (20:00 New York, since Polygon's
 * aggregates cover pre-market and after-hours trades), on the schedule the base keeps; intraday
 * aggregates are never stored as daily bars. Without a stream URL (the free plan has no WebSocket)
 * the vendor is polled on that schedule alone.
 *
 * Prices: REST is read twice per ticker, `adjusted=false` for the traded OHLCV and `adjusted=true`
 * for `adjClose`. Polygon adjusts for splits only, not dividends: returns across an ex-dividend
 * date include the payout's drop. The key goes in an `Authorization: Bearer` header, never a URL (URLs
 * reach logs), and `next_url` is followed only on the configured origin, so the key goes nowhere else.
 */
export interface PolygonFeedOptions extends VendorFeedOptions {
  readonly apiKey: string;
  /** REST base, e.g. `https://api.polygon.io`. */
  readonly restUrl: string;
  /** `wss://socket.polygon.io/stocks` (real time), `wss://delayed.polygon.io/stocks`; absent: REST polling only. */
  readonly streamUrl?: string | undefined;
}

const SOURCE = 'polygon';
/** Largest `limit` Polygon serves: about 200 years of daily bars, so a backfill is usually one page. */
const PAGE_LIMIT = 50_000;
const MAX_PAGES = 1_000;
/** Extended hours end at 20:00 New York, four hours after the regular close. */
const EXTENDED_HOURS_MS = 4 * 3_600_000;
const KEY_HINT = 'check POLYGON_API_KEY and that your plan covers stocks aggregates (and the WebSocket, for POLYGON_STREAM_URL)';

export function createPolygonFeed(options: PolygonFeedOptions): LiveVendorFeed {
  return createLiveVendorFeed({ ...options, adapter: polygonAdapter(options) });
}

export function polygonAdapter(options: Pick<PolygonFeedOptions, 'apiKey' | 'restUrl' | 'streamUrl' | 'http'>): VendorAdapter {
  const { http } = options;
  const origin = new URL(options.restUrl).origin;
  const headers = { authorization: `Bearer ${options.apiKey}`, accept: 'application/json' };

  /** Every page of one ticker's daily aggregates. */
  const fetchTicker = async (symbol: string, from: string, to: string, adjusted: boolean): Promise<PolygonAgg[]> => {
    const first = new URL(`${options.restUrl}/v2/aggs/ticker/${encodeURIComponent(symbol)}/range/1/day/${from}/${to}`);
    first.searchParams.set('adjusted', String(adjusted));
    first.searchParams.set('sort', 'asc');
    first.searchParams.set('limit', String(PAGE_LIMIT));
    const results: PolygonAgg[] = [];
    const seen = new Set<string>();
    let url: string | undefined = first.toString();
    for (let pages = 1; url; pages++) {
      const page: AggsPage = await http.request({ url, init: { headers } }, parseAggsPage);
      if (page.ticker !== symbol) throw new Error(`polygon: asked for ${symbol}, the page is for ${page.ticker}`);
      results.push(...page.results);
      url = page.nextUrl;
      if (!url) break;
      if (new URL(url).origin !== origin) throw new Error(`polygon: next_url leaves ${origin}; not following it with the key`);
      if (seen.has(url) || pages >= MAX_PAGES)
        throw new Error(`polygon: pagination does not end (page ${pages}, next_url repeated or over ${MAX_PAGES} pages)`);
      seen.add(url);
    }
    return results;
  };

  const read = (text: string): StreamEvent[] => {
    const events: StreamEvent[] = [];
    for (const message of parsePolygonFrame(text)) {
      if (message.ev === 'AM') events.push({ kind: 'traded', symbol: message.sym, time: new Date(message.start) });
      else if (message.ev === 'malformed') events.push({ kind: 'malformed', reason: message.reason });
      else if (message.ev === 'status') {
        const event = statusEvent(message.status, message.message, options.apiKey);
        if (event) events.push(event);
      }
    }
    return events;
  };

  const params = (symbols: readonly string[]) => symbols.map((symbol) => `AM.${symbol}`).join(',');

  return {
    name: SOURCE,
    label: options.streamUrl ? `stream ${new URL(options.streamUrl).host}` : 'REST only',
    symbolsVariable: 'POLYGON_SYMBOLS',
    finalAfterMs: EXTENDED_HOURS_MS,
    async fetchDailyBars(symbols, start, at) {
      const from = start.toISOString().slice(0, 10);
      const to = newYorkDateOf(at);
      const bars: Bar[] = [];
      for (const symbol of symbols) {
        const raw = await fetchTicker(symbol, from, to, false);
        const adjusted = await fetchTicker(symbol, from, to, true);
        const adjustedClose = new Map(adjusted.map((agg) => [sessionDate(new Date(agg.t)).getTime(), agg.c]));
        for (const agg of raw) {
          const time = sessionDate(new Date(agg.t));
          const adjClose = adjustedClose.get(time.getTime()) ?? agg.c;
          bars.push({ symbol, time, open: agg.o, high: agg.h, low: agg.l, close: agg.c, adjClose, volume: agg.v, source: SOURCE });
        }
      }
      return bars;
    },
    explainRestFailure: describeRestFailure,
    stream: options.streamUrl
      ? {
          url: options.streamUrl,
          read,
          subscribe: (symbols) => JSON.stringify({ action: 'subscribe', params: params(symbols) }),
          unsubscribe: (symbols) => JSON.stringify({ action: 'unsubscribe', params: params(symbols) }),
        }
      : undefined,
  };
}

/** A status event's meaning; the vendor's message is kept short and never holds the key (it is not echoed). */
function statusEvent(status: string, message: string, apiKey: string): StreamEvent | undefined {
  const said = message.replaceAll(apiKey, '***').slice(0, 200);
  switch (status) {
    case 'connected':
      // The auth message carries the key: it is sent, never logged.
      return { kind: 'send', text: JSON.stringify({ action: 'auth', params: apiKey }) };
    case 'auth_success':
      return { kind: 'authenticated' };
    case 'success':
      return /^subscribed to/i.test(said) ? { kind: 'subscribed' } : undefined;
    case 'auth_failed':
      return { kind: 'error', problem: `stream auth failed (${said || 'auth_failed'})`, hint: KEY_HINT, auth: true };
    case 'max_connections':
      return { kind: 'error', problem: `stream refused: ${said || 'max_connections'}`, hint: KEY_HINT, close: true };
    default:
      // `error` and anything undocumented: a plan without the WebSocket answers "not authorized".
      return /not authorized|upgrade/i.test(said)
        ? { kind: 'error', problem: `stream not authorized (${said})`, hint: KEY_HINT, auth: true }
        : { kind: 'error', problem: `stream status ${status}${said ? `: ${said}` : ''}` };
  }
}

/** A log line and readiness detail that say what to do; never a key. */
function describeRestFailure(error: unknown): string {
  const refusal = error instanceof VendorUnavailableError && error.cause instanceof PolygonRefusal ? error.cause : undefined;
  if (refusal?.kind === 'throttled') return `REST throttled (in the body: "${refusal.vendorMessage}"); retrying later`;
  if (refusal?.kind === 'not-authorized') return `REST auth failed ("${refusal.vendorMessage}"): ${KEY_HINT}`;
  if (refusal) return `REST refused ("${refusal.vendorMessage}")`;
  if (error instanceof VendorUnavailableError) {
    if (error.status === 401 || error.status === 403) return `REST auth failed (HTTP ${error.status}): ${KEY_HINT}`;
    if (error.status === 429) return `REST throttled (HTTP 429 after ${error.attempts} attempt(s)); retrying later`;
    return `REST ${error.message}`;
  }
  return `REST ${error instanceof Error ? error.message : String(error)}`;
}
