import { z } from 'zod';
import { describeIssue, entryTag, parseJsonArrayFrame, type WireOhlcv } from './vendor-frames.js';
import { SYMBOL_PATTERN } from './market-data.js';

/**
 * The wire format of Polygon.io's stocks API, read strictly: what the documentation promises is
 * checked, anything else is a malformed payload (an error for a REST page, a skipped entry on the
 * stream). Sources:
 * - custom bars: https://polygon.io/docs/stocks/get_v2_aggs_ticker__stocksticker__range__multiplier___timespan___from___to
 *   (`GET /v2/aggs/ticker/{ticker}/range/1/day/{from}/{to}?adjusted=&sort=asc&limit=` (max 50000);
 *   `{ ticker, adjusted, queryCount, resultsCount, status: "OK" | "DELAYED", request_id, results: [{ t, o, h, l, c, v, vw, n }],
 *   next_url }`; `adjusted` is for splits only), auth by `Authorization: Bearer KEY` or `apiKey=`
 *   (https://apis.io/examples/polygon/polygon-stocks-aggregate-bars-example/); refusals carry `status: "ERROR"` or
 *   `"NOT_AUTHORIZED"` with `error`/`message`, e.g. "You've exceeded the maximum requests per minute"
 *   (HTTP 429, sometimes seen in a 200 body through proxies) or "Unknown API Key" (HTTP 401);
 * - stocks WebSocket: https://polygon.io/docs/stocks/ws_stocks_a and
 *   https://asyncapi.apis.io/asyncapis/polygon/polygon-websocket-asyncapi/ (`wss://socket.polygon.io/stocks`, delayed
 *   `wss://delayed.polygon.io/stocks`; frames are JSON arrays of `{ ev, ... }`; `status` events
 *   `connected`, `auth_success`, `auth_failed`, `success`, `max_connections`, `error`; `AM` minute
 *   aggregates `{ ev: "AM", sym, v, av, op, vw, o, c, h, l, a, z, s, e }` with `s`/`e` in Unix ms).
 */

/** One daily aggregate as Polygon sends it; `t` is the window's start in Unix ms (midnight New York). */
export interface PolygonAgg extends WireOhlcv {
  readonly t: number;
}

const finite = z.number().finite();
const aggSchema = z.object({ t: z.number().int(), o: finite, h: finite, l: finite, c: finite, v: finite.nonnegative() });

const pageSchema = z.object({
  ticker: z.string().regex(SYMBOL_PATTERN),
  status: z.enum(['OK', 'DELAYED']),
  adjusted: z.boolean(),
  // An answer with no bars omits `results` (documented change of 2020-12-07).
  results: z.array(aggSchema).optional(),
  next_url: z.string().url().optional(),
});

const refusalSchema = z.object({
  status: z.enum(['ERROR', 'NOT_AUTHORIZED']),
  error: z.string().optional(),
  message: z.string().optional(),
});

export interface AggsPage {
  readonly ticker: string;
  readonly adjusted: boolean;
  readonly results: readonly PolygonAgg[];
  readonly nextUrl: string | undefined;
}

/** Polygon said no in the body: throttled, not entitled, or another refusal. */
export class PolygonRefusal extends Error {
  override readonly name = 'PolygonRefusal';
  constructor(
    readonly kind: 'throttled' | 'not-authorized' | 'error',
    readonly vendorMessage: string,
  ) {
    super(`polygon refused: ${kind}: ${vendorMessage}`);
  }
}

/** One page of custom bars; throws {@link PolygonRefusal} for a refusal body and a plain Error for anything malformed. */
export function parseAggsPage(body: unknown): AggsPage {
  const refusal = refusalSchema.safeParse(body);
  if (refusal.success) {
    const text = (refusal.data.error ?? refusal.data.message ?? '').slice(0, 300);
    const kind =
      refusal.data.status === 'NOT_AUTHORIZED' || /api key|not authorized|not entitled/i.test(text)
        ? 'not-authorized'
        : /exceeded|rate limit|too many|maximum requests/i.test(text)
          ? 'throttled'
          : 'error';
    throw new PolygonRefusal(kind, text || refusal.data.status);
  }
  const parsed = pageSchema.safeParse(body);
  if (!parsed.success) throw new Error(`not an aggregates page: ${describeIssue(parsed.error)}`);
  const { ticker, adjusted, results, next_url } = parsed.data;
  return { ticker, adjusted, results: results ?? [], nextUrl: next_url };
}

export type PolygonMessage =
  | { readonly ev: 'status'; readonly status: string; readonly message: string }
  | { readonly ev: 'AM'; readonly sym: string; readonly start: number; readonly agg: PolygonAgg }
  | { readonly ev: 'other'; readonly type: string }
  | { readonly ev: 'malformed'; readonly reason: string };

const statusSchema = z.object({ status: z.string(), message: z.string().default('') });
const minuteSchema = z.object({
  sym: z.string().regex(SYMBOL_PATTERN),
  o: finite,
  h: finite,
  l: finite,
  c: finite,
  v: finite.nonnegative(),
  s: z.number().int(),
  e: z.number().int(),
});

/** Parses one text frame: a JSON array of events. A frame that is not one gives a single `malformed`. */
export function parsePolygonFrame(text: string): PolygonMessage[] {
  return parseJsonArrayFrame<PolygonMessage>(text, (reason) => ({ ev: 'malformed', reason }), parseEntry);
}

function parseEntry(entry: unknown): PolygonMessage {
  const type = entryTag(entry, 'ev');
  if (type === undefined) return { ev: 'malformed', reason: 'entry has no string "ev"' };
  if (type === 'status') {
    const parsed = statusSchema.safeParse(entry);
    return parsed.success ? { ev: 'status', ...parsed.data } : { ev: 'malformed', reason: `status: ${describeIssue(parsed.error)}` };
  }
  if (type === 'AM') {
    const parsed = minuteSchema.safeParse(entry);
    if (!parsed.success) return { ev: 'malformed', reason: `AM: ${describeIssue(parsed.error)}` };
    const { sym, o, h, l, c, v, s } = parsed.data;
    return { ev: 'AM', sym, start: s, agg: { t: s, o, h, l, c, v } };
  }
  return { ev: 'other', type };
}
