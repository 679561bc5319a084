import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A daily bar as a fake vendor stores it, before it is put on the wire in the vendor's own shape. */
export interface FakeBar {
  /** Session date, YYYY-MM-DD. */
  readonly date: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  /** Adjusted prices multiply by this (splits and dividends after the bar); default 1. */
  readonly factor?: number;
}

/**
 * What every local market-data vendor on 127.0.0.1 shares: a real HTTP server for REST, a real
 * WebSocket server on its own port for the stream (handshakes refused with 503 while
 * `acceptingStream` is false, as during an outage), the stored bars, and the stream clients with
 * whatever per-connection state the vendor's protocol keeps. Each vendor supplies the REST handler and
 * the stream protocol; the wire formats stay in the subclasses, beside their documentation.
 */
export abstract class FakeVendor<Client> {
  readonly bars = new Map<string, FakeBar[]>();
  /** Every JSON message a stream client sent (the auth message too, keys included: the fake's own). */
  readonly received: unknown[] = [];
  /** While false, stream handshakes are refused (HTTP 503), as during an outage. */
  acceptingStream = true;
  restUrl = '';
  streamUrl = '';
  protected readonly clients = new Map<WebSocket, Client>();
  readonly #http: Server;
  readonly #wsHttp: Server;
  readonly #wss: WebSocketServer;

  /**
   * @param streamPath where the WebSocket server listens
   * @param streamUrlPath what `streamUrl` ends with: the path itself, or '' for a vendor whose client
   *   configuration is the origin and which appends the path itself (Alpaca adds its feed)
   */
  constructor(
    readonly streamPath: string,
    readonly streamUrlPath: string = streamPath,
  ) {
    this.#http = createServer((req, res) => this.handleRest(req, res));
    this.#wsHttp = createServer((_req, res) => res.writeHead(426).end());
    this.#wss = new WebSocketServer({
      server: this.#wsHttp,
      path: streamPath,
      verifyClient: (_info, done) => (this.acceptingStream ? done(true) : done(false, 503, 'unavailable')),
    });
    this.#wss.on('connection', (ws) => {
      this.clients.set(ws, this.newClient());
      ws.on('close', () => this.clients.delete(ws));
      this.onConnection(ws, this.clients.get(ws) as Client);
    });
  }

  protected abstract handleRest(req: IncomingMessage, res: ServerResponse): void;
  protected abstract newClient(): Client;
  /** The protocol from the first frame on: greeting, auth, subscriptions. */
  protected abstract onConnection(ws: WebSocket, client: Client): void;

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#http.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => this.#wsHttp.listen(0, '127.0.0.1', resolve));
    this.restUrl = `http://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
    this.streamUrl = `ws://127.0.0.1:${(this.#wsHttp.address() as AddressInfo).port}${this.streamUrlPath}`;
    return this;
  }

  async close(): Promise<void> {
    for (const ws of this.clients.keys()) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    await new Promise<void>((resolve) => this.#wsHttp.close(() => resolve()));
  }

  /** Stores bars for REST, replacing any of the same date, kept in date order. */
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

  /** Sends a raw text frame to every connected client. */
  sendRaw(text: string): void {
    for (const ws of this.clients.keys()) ws.send(text);
  }

  /** Cuts every stream connection (no close frame), as a network drop would. */
  dropStream(): void {
    for (const ws of this.clients.keys()) ws.terminate();
  }
}

/** Prices as a vendor rounds them (4 decimals) after applying an adjustment factor. */
export function adjustedPrice(x: number, factor: number): number {
  return Math.round(x * factor * 10_000) / 10_000;
}

/** Midnight in New York of the session `date`, as an instant (EDT or EST by the date). */
export function newYorkMidnight(date: string): Date {
  const edt = new Date(`${date}T04:00:00Z`);
  const hour = Number(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', hourCycle: 'h23' }).format(edt));
  return hour === 0 ? edt : new Date(`${date}T05:00:00Z`);
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
