import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import {
  NOT_ENTITLED,
  STATUS_AUTH_FAILED,
  STATUS_AUTH_SUCCESS,
  STATUS_CONNECTED,
  STATUS_NOT_AUTHORIZED,
  TOO_MANY_REQUESTS,
  UNKNOWN_API_KEY,
  aggregatesPage,
  subscribed,
  unsubscribed,
} from '../fixtures/polygon/wire.js';
import { adjustedPrice, FakeVendor, newYorkMidnight, type FakeBar } from './fake-vendor.js';

/**
 * A local Polygon.io on 127.0.0.1: a real HTTP server for daily aggregates (custom bars) and a real
 * WebSocket server for the stocks cluster, speaking the documented protocol (the bodies and frames,
 * and their documentation sources, are in test/fixtures/polygon/wire.ts).
 *
 * - `GET /v2/aggs/ticker/{T}/range/1/day/{from}/{to}?adjusted=&sort=&limit=[&cursor=]`, key by
 *   `Authorization: Bearer` or `apiKey=`; HTTP 401 with `Unknown API Key` for a wrong key; 429 when
 *   throttled (or the same refusal in a 200 body, `throttleInBody`); `next_url` on the same origin.
 * - `/stocks`: `connected` on open, `auth` → `auth_success` / `auth_failed`, `subscribe` /
 *   `unsubscribe` with `AM.SYM` params, `AM` minute aggregates from {@link FakePolygon.sendMinute}.
 */
export interface FakePolygonOptions {
  apiKey?: string;
  /** Results per page at most, whatever `limit` asks (forces pagination with little data). */
  pageSize?: number;
  /** The stream answers `not authorized` to auth (a plan without WebSockets). */
  streamNotEntitled?: boolean;
}

export interface FakePolygonRequest {
  readonly path: string;
  readonly query: Record<string, string>;
  readonly status: number;
  readonly authorization: string | undefined;
}

interface PolygonClient {
  authenticated: boolean;
  symbols: Set<string>;
}

export class FakePolygon extends FakeVendor<PolygonClient> {
  readonly requests: FakePolygonRequest[] = [];
  /** Answer the next N REST requests with a throttle refusal: HTTP 429, or HTTP 200 with the refusal body. */
  throttle = { remaining: 0, inBody: false };
  /** Answer the next N REST requests with a body that breaks the schema. */
  malformed = 0;
  /** Pages hold every bar twice and in reverse order (a vendor that repeats and reorders). */
  disorder = false;

  constructor(readonly options: FakePolygonOptions = {}) {
    super('/stocks');
  }

  get apiKey() {
    return this.options.apiKey ?? 'polygon-test-key-do-not-log';
  }

  /** Symbols some authenticated client is subscribed to. */
  get subscribedSymbols(): Set<string> {
    return new Set([...this.clients.values()].filter((c) => c.authenticated).flatMap((c) => [...c.symbols]));
  }

  /** A minute aggregate at `minute` (UTC ISO) for each symbol, to subscribed clients, one frame. */
  sendMinute(symbols: readonly string[], minute: string, price = 100): void {
    const s = Date.parse(minute);
    for (const [ws, client] of this.clients) {
      const mine = symbols.filter((symbol) => client.authenticated && client.symbols.has(symbol));
      if (mine.length === 0) continue;
      const events = mine.map((sym) => ({
        ev: 'AM',
        sym,
        v: 1_200,
        av: 1_000_000,
        op: price,
        vw: price,
        o: price,
        c: price,
        h: price,
        l: price,
        a: price,
        z: 100,
        s,
        e: s + 60_000,
      }));
      ws.send(JSON.stringify(events));
    }
  }

  protected newClient(): PolygonClient {
    return { authenticated: false, symbols: new Set<string>() };
  }

  protected onConnection(ws: WebSocket, client: PolygonClient): void {
    ws.send(JSON.stringify([STATUS_CONNECTED]));
    ws.on('message', (data) => {
      let message: { action?: string; params?: string };
      try {
        message = JSON.parse(String(data));
      } catch {
        return;
      }
      this.received.push(message);
      if (message.action === 'auth') {
        if (this.options.streamNotEntitled) return void ws.send(JSON.stringify([STATUS_NOT_AUTHORIZED]));
        client.authenticated = message.params === this.apiKey;
        ws.send(JSON.stringify([client.authenticated ? STATUS_AUTH_SUCCESS : STATUS_AUTH_FAILED]));
        return;
      }
      if (!client.authenticated) return;
      const params = (message.params ?? '').split(',').filter(Boolean);
      if (message.action === 'subscribe') {
        for (const param of params) client.symbols.add(param.replace(/^AM\./, ''));
        ws.send(JSON.stringify(params.map(subscribed)));
      } else if (message.action === 'unsubscribe') {
        for (const param of params) client.symbols.delete(param.replace(/^AM\./, ''));
        ws.send(JSON.stringify(params.map(unsubscribed)));
      }
    });
  }

  protected handleRest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const authorization = req.headers.authorization;
    const send = (status: number, body: unknown) => {
      this.requests.push({ path: url.pathname, query, status, authorization });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const match = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/1\/day\/(\d{4}-\d{2}-\d{2})\/(\d{4}-\d{2}-\d{2})$/.exec(url.pathname);
    if (!match) return send(404, { status: 'NOT_FOUND', request_id: 'x', message: 'Not Found' });
    const key = authorization?.replace(/^Bearer /, '') ?? query.apiKey;
    if (!key) return send(401, { status: 'ERROR', request_id: 'x', error: 'API Key was not provided' });
    if (key !== this.apiKey) return send(401, UNKNOWN_API_KEY);
    if (this.throttle.remaining > 0) {
      this.throttle.remaining--;
      return send(this.throttle.inBody ? 200 : 429, TOO_MANY_REQUESTS);
    }
    if (this.malformed > 0) {
      this.malformed--;
      return send(200, { ticker: match[1], status: 'OK', adjusted: true, results: [{ t: 'yesterday', o: 'one' }] });
    }
    const [, ticker, from, to] = match as unknown as [string, string, string, string];
    if (!['true', 'false', undefined].includes(query.adjusted)) return send(400, NOT_ENTITLED);
    // As Polygon's, the cursor carries the first request's parameters (base64 of a query string) and the position.
    const cursor = new URLSearchParams(query.cursor ? Buffer.from(query.cursor, 'base64url').toString() : '');
    const asked = query.cursor ? Object.fromEntries(cursor) : query;
    const adjusted = asked.adjusted !== 'false';
    const rows = (this.bars.get(decodeURIComponent(ticker)) ?? []).filter((b) => b.date >= from && b.date <= to);
    const limit = Math.min(Number(asked.limit ?? 5_000), this.options.pageSize ?? 50_000);
    const offset = Number(cursor.get('offset') ?? 0);
    let page = rows.slice(offset, offset + limit).map((bar) => wireAgg(bar, adjusted ? (bar.factor ?? 1) : 1));
    if (this.disorder) page = [...page, ...page].reverse();
    let nextUrl: string | undefined;
    if (offset + limit < rows.length) {
      const next = new URL(`${this.restUrl}${url.pathname}`);
      const state = new URLSearchParams({
        adjusted: String(adjusted),
        limit: String(asked.limit ?? 5_000),
        offset: String(offset + limit),
      });
      next.searchParams.set('cursor', Buffer.from(state.toString()).toString('base64url'));
      nextUrl = next.toString();
    }
    send(200, aggregatesPage(decodeURIComponent(ticker), adjusted, page, nextUrl));
  }
}

/** A daily aggregate as Polygon stamps it: `t` in Unix ms at midnight New York time of the session. */
function wireAgg(bar: FakeBar, factor: number) {
  return {
    v: bar.v,
    vw: adjustedPrice((bar.h + bar.l + bar.c) / 3, factor),
    o: adjustedPrice(bar.o, factor),
    c: adjustedPrice(bar.c, factor),
    h: adjustedPrice(bar.h, factor),
    l: adjustedPrice(bar.l, factor),
    t: newYorkMidnight(bar.date).getTime(),
    n: 1_000,
  };
}
