import { z } from 'zod';
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
export interface AlpacaBar {
  /** RFC-3339 start of the bar; for daily bars midnight America/New_York of the session. */
  readonly t: string;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
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
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [{ T: 'malformed', reason: 'frame is not JSON' }];
  }
  if (!Array.isArray(value)) return [{ T: 'malformed', reason: 'frame is not a JSON array' }];
  return value.map(parseStreamEntry);
}

function parseStreamEntry(entry: unknown): StreamMessage {
  if (typeof entry !== 'object' || entry === null || typeof (entry as { T?: unknown }).T !== 'string') {
    return { T: 'malformed', reason: 'entry has no string "T"' };
  }
  const type = (entry as { T: string }).T;
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

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
}

const DAY_MS = 86_400_000;
const newYorkDate = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit' });
const newYorkHour = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', hourCycle: 'h23' });

/**
 * The trading session a bar belongs to, stamped as the bars store stamps daily bars (00:00 UTC of the
 * date). Alpaca stamps a daily bar at midnight New York time (04:00 or 05:00 UTC), so the date is read
 * in America/New_York, never in UTC.
 */
export function sessionDate(time: string | Date): Date {
  const instant = typeof time === 'string' ? new Date(time) : time;
  // A bar stamped at exactly 00:00 UTC (proxies and caches that re-stamp daily bars) names its date in
  // UTC: read in New York it would be the evening before, a day early. No session starts at 19:00 there.
  if (instant.getTime() % DAY_MS === 0) return new Date(instant.getTime());
  return new Date(`${newYorkDate.format(instant)}T00:00:00Z`);
}

/**
 * When the regular session of `date` (00:00 UTC of the date) ends: 16:00 New York time. A daily bar
 * is final only after it; before, the stream's daily bar is the day so far. Half days close at 13:00,
 * so their bar is treated as partial three hours longer than it is: late, never wrong.
 */
export function sessionClose(date: Date): Date {
  const winter = new Date(date.getTime() + 21 * 3_600_000); // 16:00 EST = 21:00 UTC
  return Number(newYorkHour.format(winter)) === 17 ? new Date(winter.getTime() - 3_600_000) : winter;
}

/** True when `date`'s session has closed at `now`. */
export function isFinalSession(date: Date, now: Date): boolean {
  return now.getTime() >= sessionClose(date).getTime();
}

/** Weekdays strictly between two session dates: 0 when `later` is the next weekday after `earlier`. */
export function weekdaysBetween(earlier: Date, later: Date): number {
  let count = 0;
  for (let t = earlier.getTime() + DAY_MS; t < later.getTime(); t += DAY_MS) {
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) count++;
  }
  return count;
}

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
