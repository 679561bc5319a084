import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { adjustedPrice, FakeVendor, newYorkMidnight, type FakeBar } from './fake-vendor.js';

/**
 * A local Alpaca Market Data v2 on 127.0.0.1: a real HTTP server for historical bars and a real
 * WebSocket server for the real-time stream, speaking the documented protocol. Sources:
 * - `GET /v2/stocks/bars`: https://docs.alpaca.markets/us/reference/stockbars — query `symbols`
 *   (comma-separated), `timeframe`, `start`, `end`, `limit` (1-10000, default 1000, counted over all
 *   symbols), `adjustment` (raw | split | dividend | all), `feed`, `page_token`; answer
 *   `{ "bars": { "AAPL": [{ "t": "2024-01-03T05:00:00Z", "o", "h", "l", "c", "v", "n", "vw" }] },
 *   "next_page_token": "…" | null }`, sorted by symbol then time; auth headers `APCA-API-KEY-ID` and
 *   `APCA-API-SECRET-KEY`, HTTP 403 when they are wrong, HTTP 429 when throttled.
 * - stream `wss://stream.data.alpaca.markets/v2/{feed}`:
 *   https://docs.alpaca.markets/docs/real-time-stock-pricing-data and
 *   https://docs.alpaca.markets/docs/streaming-market-data — on connect
 *   `[{"T":"success","msg":"connected"}]`; `{"action":"auth","key","secret"}` →
 *   `[{"T":"success","msg":"authenticated"}]` or `[{"T":"error","code":402,"msg":"auth failed"}]`;
 *   `{"action":"subscribe","dailyBars":[…]}` → `[{"T":"subscription","trades":[],"quotes":[],"bars":[],"dailyBars":[…],…}]`
 *   (or `[{"T":"error","code":405,"msg":"symbol limit exceeded"}]`); daily bars
 *   `[{"T":"d","S":"AAPL","o","h","l","c","v","t","n","vw"}]`.
 */
export interface FakeAlpacaOptions {
  keyId?: string;
  secretKey?: string;
  /** Bars per page at most, whatever `limit` asks (forces pagination with little data). */
  pageSize?: number;
  /** Subscribing more daily-bar symbols than this answers error 405. */
  symbolLimit?: number;
}

export interface FakeRequest {
  readonly path: string;
  readonly query: Record<string, string>;
  readonly status: number;
}

interface AlpacaClient {
  authenticated: boolean;
  dailyBars: Set<string>;
}

export class FakeAlpaca extends FakeVendor<AlpacaClient> {
  readonly requests: FakeRequest[] = [];
  /** Answer the next N REST requests with 429 and this Retry-After. */
  throttle = { remaining: 0, retryAfterS: 0 };
  /** Answer the next N REST requests with a body that breaks the schema. */
  malformed = 0;

  constructor(readonly options: FakeAlpacaOptions = {}) {
    super('/v2/iex', '');
  }

  get keyId() {
    return this.options.keyId ?? 'PKTESTKEY';
  }
  get secretKey() {
    return this.options.secretKey ?? 'test-secret-do-not-log';
  }

  /** Stream clients that are authenticated and subscribed. */
  get subscribers(): number {
    return [...this.clients.values()].filter((c) => c.authenticated && c.dailyBars.size > 0).length;
  }

  /** A new daily bar: kept for REST and, with `send`, pushed to subscribed stream clients. */
  publishDaily(symbol: string, bar: FakeBar, send = true): void {
    this.addBars(symbol, [bar]);
    if (send) this.sendDaily([{ symbol, bar }]);
  }

  /** Pushes daily bars (one frame) without storing them for REST: duplicates, late or stray bars. */
  sendDaily(entries: ReadonlyArray<{ symbol: string; bar: FakeBar }>): void {
    for (const [ws, client] of this.clients) {
      const mine = entries.filter((e) => client.authenticated && client.dailyBars.has(e.symbol));
      if (mine.length) ws.send(JSON.stringify(mine.map(({ symbol, bar }) => ({ T: 'd', S: symbol, ...wireBar(bar, 1) }))));
    }
  }

  protected newClient(): AlpacaClient {
    return { authenticated: false, dailyBars: new Set<string>() };
  }

  protected onConnection(ws: WebSocket, client: AlpacaClient): void {
    ws.send(JSON.stringify([{ T: 'success', msg: 'connected' }]));
    ws.on('message', (data) => {
      let message: { action?: string; key?: string; secret?: string; dailyBars?: string[] };
      try {
        message = JSON.parse(String(data));
      } catch {
        ws.send(JSON.stringify([{ T: 'error', code: 400, msg: 'invalid syntax' }]));
        return;
      }
      this.received.push(message);
      if (message.action === 'auth') {
        if (message.key === this.keyId && message.secret === this.secretKey) {
          client.authenticated = true;
          ws.send(JSON.stringify([{ T: 'success', msg: 'authenticated' }]));
        } else {
          ws.send(JSON.stringify([{ T: 'error', code: 402, msg: 'auth failed' }]));
        }
        return;
      }
      if (message.action === 'unsubscribe' && client.authenticated) {
        for (const symbol of message.dailyBars ?? []) client.dailyBars.delete(symbol);
        ws.send(
          JSON.stringify([{ T: 'subscription', trades: [], quotes: [], bars: [], updatedBars: [], dailyBars: [...client.dailyBars] }]),
        );
        return;
      }
      if (message.action === 'subscribe') {
        if (!client.authenticated) return void ws.send(JSON.stringify([{ T: 'error', code: 401, msg: 'not authenticated' }]));
        const wanted = new Set([...client.dailyBars, ...(message.dailyBars ?? [])]);
        if (this.options.symbolLimit !== undefined && wanted.size > this.options.symbolLimit) {
          return void ws.send(JSON.stringify([{ T: 'error', code: 405, msg: 'symbol limit exceeded' }]));
        }
        client.dailyBars = wanted;
        ws.send(
          JSON.stringify([
            {
              T: 'subscription',
              trades: [],
              quotes: [],
              bars: [],
              updatedBars: [],
              dailyBars: [...wanted],
              statuses: [],
              lulds: [],
              corrections: [],
              cancelErrors: [],
            },
          ]),
        );
      }
    });
  }

  protected handleRest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ path: url.pathname, query, status });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (url.pathname !== '/v2/stocks/bars') return send(404, { message: 'Not Found' });
    if (req.headers['apca-api-key-id'] !== this.keyId || req.headers['apca-api-secret-key'] !== this.secretKey)
      return send(403, { message: 'forbidden.' });
    if (this.throttle.remaining > 0) {
      this.throttle.remaining--;
      return send(429, { message: 'too many requests.' }, { 'retry-after': String(this.throttle.retryAfterS) });
    }
    if (this.malformed > 0) {
      this.malformed--;
      return send(200, { bars: { AAPL: [{ t: 'yesterday', o: 'one' }] }, next_page_token: null });
    }
    if (query.timeframe !== '1Day' || !query.symbols || !query.start) return send(400, { message: 'invalid request' });
    const limit = Math.min(Number(query.limit ?? 1000), this.options.pageSize ?? 10_000);
    const adjusted = query.adjustment === 'all';
    const start = query.start.slice(0, 10);
    const end = query.end?.slice(0, 10) ?? '9999-12-31';
    const rows = query.symbols
      .split(',')
      .sort()
      .flatMap((symbol) => (this.bars.get(symbol) ?? []).filter((b) => b.date >= start && b.date <= end).map((bar) => ({ symbol, bar })));
    const offset = query.page_token ? Number(Buffer.from(query.page_token, 'base64url').toString()) : 0;
    const page = rows.slice(offset, offset + limit);
    const bars: Record<string, unknown[]> = {};
    for (const { symbol, bar } of page) (bars[symbol] ??= []).push(wireBar(bar, adjusted ? (bar.factor ?? 1) : 1));
    const next = offset + limit < rows.length ? Buffer.from(String(offset + limit)).toString('base64url') : null;
    send(200, { bars, next_page_token: next });
  }
}

/** A bar as Alpaca stamps it: `t` at midnight New York time of the session. */
function wireBar(bar: FakeBar, factor: number) {
  return {
    t: newYorkMidnight(bar.date).toISOString().replace('.000Z', 'Z'),
    o: adjustedPrice(bar.o, factor),
    h: adjustedPrice(bar.h, factor),
    l: adjustedPrice(bar.l, factor),
    c: adjustedPrice(bar.c, factor),
    v: bar.v,
    n: 1_000,
    vw: adjustedPrice((bar.h + bar.l + bar.c) / 3, factor),
  };
}
