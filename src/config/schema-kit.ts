import { isIP } from 'node:net';
import { Cron } from 'croner';
import { z } from 'zod';

/**
 * The pieces the variable table (variables.ts) is written with: what one variable is, and the zod
 * schemas that read an environment string into a typed value with a message a person can act on.
 */

/** Reads one environment string; its messages end up in {@link ConfigError}, named by the variable. */
export type EnvSchema = z.ZodType<unknown, string>;

/** One environment variable: everything Sibyl knows about it, in one place. */
export interface Variable {
  /** Reads the text; a bad value is reported with this schema's message. */
  readonly schema: EnvSchema;
  /** The text used when the variable is unset or empty; read by `schema` like a given value. */
  readonly default?: string;
  /** The README's default column when it is not `default` (unset, or decided by other variables). */
  readonly shown?: string;
  /** The README's meaning column. */
  readonly doc: string;
  /**
   * Where the value lands in Config (a dotted path), type-checked against it. Absent: the rules in
   * config.ts read it (values that depend on other variables or on the working directory).
   */
  readonly at?: string;
  /** Its value is never echoed in an error. */
  readonly secret?: true;
}

/** The value a variable gives: its schema's output, or undefined when it may be unset. */
export type ValueOf<V extends Variable> = V extends { default: string } ? z.output<V['schema']> : z.output<V['schema']> | undefined;

export const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

export const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, { message: `expected an integer between ${min} and ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `must be at least ${min}` })
        .max(max, { message: `must be at most ${max}` }),
    );

/** A decimal number in [min, max], such as 0.9 or 2.5. */
export const decimal = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?(\d+(\.\d*)?|\.\d+)$/, { message: `expected a number between ${min} and ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { message: `must be at least ${min}` })
        .max(max, { message: `must be at most ${max}` }),
    );

export const urlWithProtocols = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** Comma-separated tickers, de-duplicated: the ticker rule of SYMBOL_PATTERN (src/domain); config imports nothing. */
export const tickers = z
  .string()
  .regex(/^\s*[A-Z][A-Z0-9.-]{0,9}\s*(,\s*[A-Z][A-Z0-9.-]{0,9}\s*)*$/, {
    message: 'expected comma-separated upper-case tickers such as AAPL,MSFT',
  })
  .transform((v) => [...new Set(v.split(',').map((s) => s.trim()))]);

/** A single token (an API key id or secret): no spaces, at most 256 characters. */
export const token = (what: string) => z.string().regex(/^\S{1,256}$/, { message: `expected the ${what}, no spaces` });

/** A date such as 2020-01-02 (midnight UTC) or an ISO time in UTC. */
export const utcDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T[\d:.]+Z)?$/, { message: 'expected a date such as 2020-01-02 (or an ISO time in UTC)' })
  .transform((v) => new Date(v.length === 10 ? `${v}T00:00:00Z` : v))
  .refine((d) => Number.isFinite(d.getTime()), { message: 'not a real date' });

/** Comma-separated items, trimmed, empty ones dropped. */
export const commaList = z.string().transform((v) =>
  v
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o.length > 0),
);

/** TRUST_PROXY: false, or the proxies' addresses/CIDRs for fastify's `trustProxy`. */
export const trustedProxies = z.string().transform((value, ctx) => {
  const parsed = parseTrustProxy(value);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed });
    return z.NEVER;
  }
  return parsed;
});

/** Names proxy-addr (fastify's trustProxy) knows for address ranges. */
const PROXY_RANGE_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY → the proxies' addresses for fastify's `trustProxy`, or a message saying what is wrong.
 * No hop count: it trusts whoever connects, whoever that is (fastify ignores one for that reason).
 */
function parseTrustProxy(value: string): false | string[] | string {
  const text = value.trim().toLowerCase();
  if (text === 'false') return false;
  if (text === 'true')
    return "true would let any client choose its own address (and rate-limit bucket): give the proxies' addresses or CIDRs";
  if (/^\d+$/.test(text))
    return "a hop count cannot tell a proxy from a client that sends the header itself: give the proxies' addresses or CIDRs";
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entries.length === 0) return 'expected comma-separated addresses/CIDRs';
  for (const entry of entries) {
    if (PROXY_RANGE_NAMES.has(entry)) continue;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk || extra !== undefined) {
      // Never echo a URL: a misplaced connection string may carry a password.
      const shown = /:\/\//.test(entry) ? 'a URL' : JSON.stringify(entry.length > 40 ? `${entry.slice(0, 40)}…` : entry);
      return `${shown} is not an IP address, a CIDR (10.0.0.0/8) or one of loopback, linklocal, uniquelocal`;
    }
  }
  return entries;
}

/**
 * A cron expression as croner (the scheduler that runs it) reads it: 5 fields (minute hour day-of-month
 * month day-of-week), 6 with seconds first, 7 with a year last, or a nickname (`@daily`, `@weekly`, …).
 * Refused: anything croner cannot parse, a date (croner would run it once; a schedule repeats), and a
 * pattern no date matches (`0 0 30 2 *`), which would be off without saying so.
 */
export const cronExpression = z.string().transform((value, ctx) => {
  const text = value.trim().replace(/\s+/g, ' ');
  if (!/^(@[A-Za-z]+|\S+( \S+){4,6})$/.test(text)) {
    ctx.addIssue({
      code: 'custom',
      message:
        'expected a cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly',
    });
    return z.NEVER;
  }
  let next: Date | null;
  try {
    // No function given: croner parses and computes, and starts no timer.
    next = new Cron(text, { timezone: 'UTC' }).nextRun();
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not a valid cron expression: ${(error as Error).message.replace(/^Cron\w*:\s*/, '')}` });
    return z.NEVER;
  }
  if (!next) {
    ctx.addIssue({ code: 'custom', message: 'no date matches it, so it would never fire' });
    return z.NEVER;
  }
  return text;
});

/** An IANA time zone name the runtime knows (`America/New_York`, `Europe/London`, `UTC`). */
export const timeZone = z.string().refine(
  (value) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: value });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected an IANA time zone such as America/New_York, Europe/London or UTC' },
);

/** Comma-separated strategy names (lower-case words joined by `-`, as `direction-1d`), de-duplicated. */
export const strategyNames = z
  .string()
  .regex(/^\s*[a-z0-9]+(-[a-z0-9]+)*\s*(,\s*[a-z0-9]+(-[a-z0-9]+)*\s*)*$/, {
    message: 'expected comma-separated strategy names such as direction-1d,direction-5d',
  })
  .transform((v) => [...new Set(v.split(',').map((s) => s.trim()))]);
