import { z } from 'zod';
import { describeIssue, entryTag, parseJsonArrayFrame, type WireOhlcv } from './vendor-frames.js';
import { SYMBOL_PATTERN } from './market-data.js';

/**
 * The wire format of Alpaca Market Data v2, read strictly: what the documentation promises is
 * checked, anything else is a malformed payload (an error for a REST page, a skipped entry on the
 * stream). Sources:
 * - historical bars: https://docs.alpaca.markets/us/reference/stockbars (`GET /v2/stocks/bars`,
 *   `{ bars: { SYM: [{ t, o, h, l, c, v, n, vw }] }, next_page_token }`, sorted by symbol then time);
 * - real-time stream: https://docs.alpaca.markets/docs/real-time-stock-pricing-data (arrays of
 *   `{ T, ... }`; control messages `success` / `error` / `subscription`; bars `b`, daily bars `d`,
 *   updated bars `u`; error codes 401-410).
 */

/** One bar as Alpaca sends it, REST and stream alike (the stream adds `T` and `S`). */
export interface AlpacaBar extends WireOhlcv {
  /** RFC-3339 start of the bar; for daily bars midnight America/New_York of the session. */
  readonly t: string;
}

const finite = z.number().finite();
const barSchema = z.object({
  t: z.string().refine((t) => Number.isFinite(Date.parse(t)), { message: 'not an RFC-3339 time' }),
  o: finite,
  h: finite,
  l: finite,
  c: finite,
  v: finite.nonnegative(),
});

const pageSchema = z.object({
  // An answer with no bars at all has been seen as `null` as well as `{}`.
  bars: z.record(z.string().regex(SYMBOL_PATTERN), z.array(barSchema)).nullable(),
  next_page_token: z.string().min(1).nullable().optional(),
});

export interface BarsPage {
  readonly bars: ReadonlyMap<string, readonly AlpacaBar[]>;
  readonly nextPageToken: string | undefined;
}

/** One page of `GET /v2/stocks/bars`; throws (a malformed body) on anything else. */
export function parseBarsPage(body: unknown): BarsPage {
  const parsed = pageSchema.safeParse(body);
  if (!parsed.success) throw new Error(`not a bars page: ${describeIssue(parsed.error)}`);
  return { bars: new Map(Object.entries(parsed.data.bars ?? {})), nextPageToken: parsed.data.next_page_token ?? undefined };
}

/** What one stream frame holds, entry by entry; entries that break the schema are `malformed`. */
export type StreamMessage =
  | { readonly T: 'success'; readonly msg: string }
  | { readonly T: 'error'; readonly code: number; readonly msg: string }
  | { readonly T: 'subscription'; readonly dailyBars: readonly string[]; readonly bars: readonly string[] }
  | { readonly T: 'd' | 'b' | 'u'; readonly S: string; readonly bar: AlpacaBar }
  | { readonly T: 'other'; readonly type: string }
  | { readonly T: 'malformed'; readonly reason: string };

const controlSchemas = {
  success: z.object({ msg: z.string() }),
  error: z.object({ code: z.number().int(), msg: z.string().default('') }),
  subscription: z.object({ dailyBars: z.array(z.string()).default([]), bars: z.array(z.string()).default([]) }),
};
const streamBarSchema = barSchema.extend({ S: z.string().regex(SYMBOL_PATTERN) });

/** Parses one text frame: a JSON array of messages. A frame that is not one gives a single `malformed`. */
export function parseStreamFrame(text: string): StreamMessage[] {
  return parseJsonArrayFrame<StreamMessage>(text, (reason) => ({ T: 'malformed', reason }), parseStreamEntry);
}

function parseStreamEntry(entry: unknown): StreamMessage {
  const type = entryTag(entry, 'T');
  if (type === undefined) return { T: 'malformed', reason: 'entry has no string "T"' };
  if (type === 'success' || type === 'error' || type === 'subscription') {
    const parsed = controlSchemas[type].safeParse(entry);
    if (!parsed.success) return { T: 'malformed', reason: `${type}: ${describeIssue(parsed.error)}` };
    return { T: type, ...parsed.data } as StreamMessage;
  }
  if (type === 'd' || type === 'b' || type === 'u') {
    const parsed = streamBarSchema.safeParse(entry);
    if (!parsed.success) return { T: 'malformed', reason: `${type}: ${describeIssue(parsed.error)}` };
    const { S, t, o, h, l, c, v } = parsed.data;
    return { T: type, S, bar: { t, o, h, l, c, v } };
  }
  return { T: 'other', type };
}

// The trading calendar is every vendor's: it lives in trading-calendar.ts; re-exported for Alpaca's callers.
export { isFinalSession, sessionClose, sessionDate, weekdaysBetween } from './trading-calendar.js';

/** Documented stream error codes, for log lines and readiness. */
export const STREAM_ERRORS: Readonly<Record<number, string>> = {
  400: 'invalid syntax',
  401: 'not authenticated',
  402: 'auth failed',
  403: 'already authenticated',
  404: 'auth timeout',
  405: 'symbol limit exceeded',
  406: 'connection limit exceeded',
  407: 'slow client',
  409: 'insufficient subscription',
  410: 'invalid subscribe action for this feed',
  500: 'internal error',
};

/** Codes that another try with the same keys cannot fix soon: waited on with the longest backoff. */
export const STREAM_AUTH_ERRORS: ReadonlySet<number> = new Set([401, 402, 409]);
