/**
 * Time spans as clients write them: `5 minutes`, `1 hour`, `1 day`, `2 weeks`. Used for
 * confidenceHistory's `bucket` and confidenceTrends' `window`.
 *
 * Only fixed-length units (seconds to weeks): PostgreSQL's date_bin refuses months and years, whose
 * length varies, and a bucket of fixed length is what makes "how many buckets does this range hold"
 * answerable before the query runs.
 *
 * ```ts
 * parseSpan('15 minutes'); // { text: '15 minutes', ms: 900_000 }
 * parseSpan('1 month');    // throws SpanError: units are second, minute, hour, day, week …
 * ```
 */
export interface Span {
  /** Normalized, e.g. `15 minutes`. */
  readonly text: string;
  readonly ms: number;
}

export class SpanError extends Error {
  override name = 'SpanError';
}

const UNIT_MS: Readonly<Record<string, number>> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
};
const ALIASES: Readonly<Record<string, string>> = {
  s: 'second',
  sec: 'second',
  m: 'minute',
  min: 'minute',
  h: 'hour',
  hr: 'hour',
  d: 'day',
  w: 'week',
};

const SPAN = /^\s*(\d{1,6})\s*([a-z]+)\s*$/i;
/** The longest span accepted: a bucket or window longer than ten years is not a question anyone asks. */
export const MAX_SPAN_MS = 3_660 * UNIT_MS.day!;

/** Parses `<count> <unit>`; throws {@link SpanError} with a message a client can act on. */
export function parseSpan(input: string, what = 'span'): Span {
  const match = SPAN.exec(input);
  const unitWord = match?.[2]?.toLowerCase();
  const singular = unitWord === undefined ? undefined : (ALIASES[unitWord] ?? unitWord.replace(/s$/, ''));
  const unitMs = singular === undefined ? undefined : UNIT_MS[singular];
  if (!match || unitMs === undefined) {
    throw new SpanError(
      `${what} ${JSON.stringify(input)} is not a time span: write "<count> <unit>" with unit one of second, minute, hour, day, week (e.g. "5 minutes", "1 hour", "1 day")`,
    );
  }
  const count = Number(match[1]);
  const ms = count * unitMs;
  if (count < 1) throw new SpanError(`${what} ${JSON.stringify(input)} must be at least 1 ${singular}`);
  if (ms > MAX_SPAN_MS) throw new SpanError(`${what} ${JSON.stringify(input)} is longer than the limit of 3660 days`);
  return { text: `${count} ${singular}${count === 1 ? '' : 's'}`, ms };
}

/** Buckets a caller gets when it names none: the smallest of these giving at most {@link AUTO_BUCKETS}. */
const AUTO_CHOICES = ['1 minute', '5 minutes', '15 minutes', '1 hour', '6 hours', '1 day', '1 week'].map((text) => parseSpan(text));
export const AUTO_BUCKETS = 1_000;

/** The default bucket for a range of `rangeMs`. */
export function autoBucket(rangeMs: number): Span {
  return AUTO_CHOICES.find((span) => rangeMs / span.ms <= AUTO_BUCKETS) ?? AUTO_CHOICES.at(-1)!;
}

/** How many buckets of `bucketMs` a range [from, to] touches at most (date_bin aligns them, so one more). */
export function bucketCount(fromMs: number, toMs: number, bucketMs: number): number {
  return Math.floor((toMs - fromMs) / bucketMs) + 1;
}
