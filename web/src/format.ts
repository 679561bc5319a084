/** Number and time formats used across pages: one place, so every page reads the same. */

const percent = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
const signedPercent = new Intl.NumberFormat(undefined, {
  style: 'percent',
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: 'exceptZero',
});
const price = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const decimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 });
const signedDecimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3, signDisplay: 'exceptZero' });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

const orDash = <T>(value: T | null | undefined, format: (v: T) => string) => (value === null || value === undefined ? '—' : format(value));

export const fmt = {
  percent: (v: number | null | undefined) => orDash(v, (x) => percent.format(x)),
  signedPercent: (v: number | null | undefined) => orDash(v, (x) => signedPercent.format(x)),
  /** Percentage points, e.g. a confidence change: +1.2 pp. */
  points: (v: number | null | undefined, digits = 1) =>
    orDash(v, (x) => {
      const shown = Math.abs(x * 100).toFixed(digits);
      return `${Number(shown) === 0 ? '±' : x > 0 ? '+' : '−'}${shown} pp`;
    }),
  price: (v: number | null | undefined) => orDash(v, (x) => price.format(x)),
  decimal: (v: number | null | undefined) => orDash(v, (x) => decimal.format(x)),
  signedDecimal: (v: number | null | undefined) => orDash(v, (x) => signedDecimal.format(x)),
  compact: (v: number | null | undefined) => orDash(v, (x) => compact.format(x)),
  dateTime: (iso: string | null | undefined) => orDash(iso, (x) => dateTime.format(new Date(x))),
  shortTime: (ms: number) => shortTime.format(new Date(ms)),
};

/** -1, 0 or 1: drives the up/down colours. */
export const direction = (v: number | null | undefined): -1 | 0 | 1 => (v === null || v === undefined || v === 0 ? 0 : v > 0 ? 1 : -1);
