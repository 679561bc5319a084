import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

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
export interface FakeBar {
  /** Session date, YYYY-MM-DD. */
  readonly date: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  /** adjustment=all multiplies prices by this (splits and dividends after the bar); default 1. */
  readonly factor?: number;
}

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

export class FakeAlpaca {
  readonly bars = new Map<string, FakeBar[]>();
  readonly requests: FakeRequest[] = [];
  /** Every JSON message a stream client sent (the auth message too, keys included: the fake's own). */
  readonly received: unknown[] = [];
  /** Answer the next N REST requests with 429 and this Retry-After. */
  throttle = { remaining: 0, retryAfterS: 0 };
  /** Answer the next N REST requests with a body that breaks the schema. */
  malformed = 0;
  /** While false, stream handshakes are refused (HTTP 503), as during an outage. */
  acceptingStream = true;
  restUrl = '';
  streamUrl = '';
  readonly #http: Server;
  readonly #wsHttp: Server;
  readonly #wss: WebSocketServer;
  readonly #clients = new Map<WebSocket, { authenticated: boolean; dailyBars: Set<string> }>();

  constructor(readonly options: FakeAlpacaOptions = {}) {
    this.#http = createServer((req, res) => this.#rest(req, res));
    this.#wsHttp = createServer((_req, res) => res.writeHead(426).end());
    this.#wss = new WebSocketServer({
      server: this.#wsHttp,
      path: '/v2/iex',
      verifyClient: (_info, done) => (this.acceptingStream ? done(true) : done(false, 503, 'unavailable')),
    });
    this.#wss.on('connection', (ws) => this.#connected(ws));
  }

  get keyId() {
    return this.options.keyId ?? 'PKTESTKEY';
  }
  get secretKey() {
    return this.options.secretKey ?? 'test-secret-do-not-log';
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#http.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => this.#wsHttp.listen(0, '127.0.0.1', resolve));
    this.restUrl = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
    this.streamUrl = `ws://127.0.0.1:${(this.#wsHttp.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const ws of this.#clients.keys()) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    await new Promise<void>((resolve) => this.#wsHttp.close(() => resolve()));
  }

  /** Stream clients that are authenticated and subscribed. */
  get subscribers(): number {
    return [...this.#clients.values()].filter((c) => c.authenticated && c.dailyBars.size > 0).length;
  }

  addBars(symbol: string, bars: readonly FakeBar[]): void {
    const list = this.bars.get(symbol) ?? [];
    for (const bar of bars) {
      const at = list.findIndex((b) => b.date === bar.date);
      if (at >= 0) list[at] = bar;
      else list.push(bar);
    }
    list.sort((a, b) => (a.date < b.date ? -1 : 1));
    this.bars.set(symbol, list);
  }

  /** A new daily bar: kept for REST and, with `send`, pushed to subscribed stream clients. */
  publishDaily(symbol: string, bar: FakeBar, send = true): void {
    this.addBars(symbol, [bar]);
    if (send) this.sendDaily([{ symbol, bar }]);
  }

  /** Pushes daily bars (one frame) without storing them for REST: duplicates, late or stray bars. */
  sendDaily(entries: ReadonlyArray<{ symbol: string; bar: FakeBar }>): void {
    for (const [ws, client] of this.#clients) {
      const mine = entries.filter((e) => client.authenticated && client.dailyBars.has(e.symbol));
      if (mine.length) ws.send(JSON.stringify(mine.map(({ symbol, bar }) => ({ T: 'd', S: symbol, ...wireBar(bar, 1) }))));
    }
  }

  /** Sends a raw text frame to every connected client. */
  sendRaw(text: string): void {
    for (const ws of this.#clients.keys()) ws.send(text);
  }

  /** Cuts every stream connection (no close frame), as a network drop would. */
  dropStream(): void {
    for (const ws of this.#clients.keys()) ws.terminate();
  }

  #connected(ws: WebSocket): void {
    const client = { authenticated: false, dailyBars: new Set<string>() };
    this.#clients.set(ws, client);
    ws.on('close', () => this.#clients.delete(ws));
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

  #rest(req: IncomingMessage, res: ServerResponse): void {
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
  const round = (x: number) => Math.round(x * factor * 10_000) / 10_000;
  return {
    t: newYorkMidnight(bar.date),
    o: round(bar.o),
    h: round(bar.h),
    l: round(bar.l),
    c: round(bar.c),
    v: bar.v,
    n: 1_000,
    vw: round((bar.h + bar.l + bar.c) / 3),
  };
}

function newYorkMidnight(date: string): string {
  const edt = new Date(`${date}T04:00:00Z`);
  const hour = Number(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', hourCycle: 'h23' }).format(edt));
  return hour === 0 ? edt.toISOString().replace('.000Z', 'Z') : `${date}T05:00:00Z`;
}

/** Weekdays (YYYY-MM-DD) ending `endDaysAgo` calendar days before today, oldest first. */
export function weekdays(count: number, endDaysAgo: number, now = new Date()): string[] {
  const out: string[] = [];
  let t = Math.floor(now.getTime() / 86_400_000) * 86_400_000 - endDaysAgo * 86_400_000;
  while (out.length < count) {
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) out.unshift(new Date(t).toISOString().slice(0, 10));
    t -= 86_400_000;
  }
  return out;
}

/** The weekdays after `date`, up to `count` of them. */
export function nextWeekdays(date: string, count: number): string[] {
  const out: string[] = [];
  let t = new Date(`${date}T00:00:00Z`).getTime();
  while (out.length < count) {
    t += 86_400_000;
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** A deterministic random walk of daily bars over `dates`. */
export function walk(dates: readonly string[], seed: number, startPrice = 100): FakeBar[] {
  let state = seed >>> 0 || 1;
  const rand = () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;
  let close = startPrice;
  return dates.map((date) => {
    const open = close;
    close = Math.round(open * (1 + (rand() - 0.5) * 0.04) * 100) / 100;
    const h = Math.round(Math.max(open, close) * (1 + rand() * 0.01) * 100) / 100;
    const l = Math.round(Math.min(open, close) * (1 - rand() * 0.01) * 100) / 100;
    return { date, o: open, h, l, c: close, v: Math.round(1e6 + rand() * 1e6) };
  });
}

/** The bar after `previous`, moved by `move` (0.01 = +1%). */
export function nextBar(previous: FakeBar, date: string, move = 0.01): FakeBar {
  const c = Math.round(previous.c * (1 + move) * 100) / 100;
  return { date, o: previous.c, h: Math.max(previous.c, c) * 1.005, l: Math.min(previous.c, c) * 0.995, c, v: 1_234_567 };
}
