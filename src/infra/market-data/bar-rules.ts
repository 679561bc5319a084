import { SYMBOL_PATTERN, type Bar } from './market-data.js';

/**
 * What a bar must be for the gateway to serve it: the one validator every way bars enter goes through
 * (CSV import, a vendor's ingest feed). The bars table's CHECK constraints only ask for positive,
 * consistent prices; these rules also bound magnitudes and ratios, so that the features, the model and
 * the price interval computed from stored bars stay finite. A finite extreme such as 1e308 passes the
 * table (it is positive) and then overflows `close × volume` or a log return to Infinity.
 *
 * The bounds were checked against the real data set (61 Alpha Vantage files, 320,674 rows, 1999-2021):
 * every row of it passes, including its 33 flat vendor bars (open = high = low = close), its zero-volume
 * rows and its split-unadjusted raw prices. Its extremes: prices 0.2018 to 5,059; volume 0 to 3.77e9;
 * adjusted close / close 0.0077 (AAPL 2000, before four splits) to 8.79 (C 2009, before a 1:10 reverse
 * split); adjusted close day over day ×0.481 (AAPL 2000-09-29) to ×1.870 (MS 2008-10-13).
 *
 * ```ts
 * checkBar(bar, latestBarTime(new Date()));   // undefined, or the first rule it breaks
 * checkMove(previous, bar);                   // undefined, or why the step from `previous` is refused
 * ```
 */
export const BAR_RULES = {
  /** Every price (open, high, low, close, adjusted close) lies in [minPrice, maxPrice]. */
  minPrice: 1e-6,
  maxPrice: 1e9,
  /** Volume lies in [0, maxVolume] (shares in a day; the real maximum is 3.8e9). */
  maxVolume: 1e12,
  /**
   * Adjusted close / close lies in [1 / maxAdjustmentRatio, maxAdjustmentRatio]: back-adjustment for
   * decades of splits and dividends moves it far from 1, but not by four orders of magnitude.
   */
  maxAdjustmentRatio: 1e4,
  /**
   * From one bar of a symbol to its next, when they are at most {@link BAR_RULES.moveWindowDays} apart
   * (consecutive trading days, across weekends and the longest market closures), the adjusted close
   * moves by at most this factor either way. Bars further apart are not compared: a file may hold a
   * sample of days, and over months a price may move any amount.
   */
  maxDailyMove: 10,
  moveWindowDays: 7,
} as const;

/** Just what the rules read: a parsed CSV row before its symbol is known has this much. */
export type BarValues = Pick<Bar, 'time' | 'open' | 'high' | 'low' | 'close' | 'adjClose' | 'volume'>;

const DAY_MS = 86_400_000;

/**
 * The latest bar time accepted at `now`: 00:00 UTC of the next weekday after today (UTC). Daily bars are
 * stamped with their trading date, and a vendor's clock or time zone may put the newest one a day ahead
 * of ours; anything later is a bar from the future (a 2099-12-31 bar would otherwise be served and
 * recorded as the newest for good). Holidays are not known here, so this errs on the generous side.
 */
export function latestBarTime(now: Date): Date {
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  let next = today + DAY_MS;
  while ([0, 6].includes(new Date(next).getUTCDay())) next += DAY_MS;
  return new Date(next);
}

/**
 * The first rule `bar` breaks on its own, or undefined when it may be stored and served. `latest` is
 * {@link latestBarTime} of the moment (computed once per batch by the caller).
 */
export function checkBar(bar: BarValues, latest: Date): string | undefined {
  const time = bar.time instanceof Date ? bar.time.getTime() : Number.NaN;
  if (!Number.isFinite(time)) return 'time is not a valid date';
  if (time > latest.getTime())
    return `date ${day(bar.time)} is in the future (latest accepted: ${day(latest)}, one trading day after today)`;
  for (const field of ['open', 'high', 'low', 'close', 'adjClose'] as const) {
    const value = bar[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) return `${field} is not a finite number (${String(value)})`;
    if (value < BAR_RULES.minPrice || value > BAR_RULES.maxPrice) {
      return `${field} ${value} is outside [${BAR_RULES.minPrice}, ${BAR_RULES.maxPrice}]`;
    }
  }
  const { open, high, low, close, adjClose, volume } = bar;
  if (typeof volume !== 'number' || !Number.isFinite(volume)) return `volume is not a finite number (${String(volume)})`;
  if (volume < 0 || volume > BAR_RULES.maxVolume) return `volume ${volume} is outside [0, ${BAR_RULES.maxVolume}]`;
  if (low > high) return `low ${low} is above high ${high}`;
  if (open < low || open > high) return `open ${open} is outside [low ${low}, high ${high}]`;
  if (close < low || close > high) return `close ${close} is outside [low ${low}, high ${high}]`;
  const ratio = adjClose / close;
  if (ratio < 1 / BAR_RULES.maxAdjustmentRatio || ratio > BAR_RULES.maxAdjustmentRatio) {
    return `adjusted close ${adjClose} is ${formatFactor(ratio)} the close ${close}; at most ${BAR_RULES.maxAdjustmentRatio}× either way`;
  }
  return undefined;
}

/** Why the step from `previous` (the symbol's bar before `bar`; `where` says where it came from) is refused, or undefined. */
export function checkMove(
  previous: Pick<Bar, 'time' | 'adjClose'>,
  bar: Pick<Bar, 'time' | 'adjClose'>,
  where?: string,
): string | undefined {
  if (bar.time.getTime() - previous.time.getTime() > BAR_RULES.moveWindowDays * DAY_MS) return undefined;
  const factor = bar.adjClose / previous.adjClose;
  if (factor >= 1 / BAR_RULES.maxDailyMove && factor <= BAR_RULES.maxDailyMove) return undefined;
  return (
    `adjusted close ${bar.adjClose} is ${formatFactor(factor)} the previous bar's ${previous.adjClose} (${day(previous.time)}${where ? `, ${where}` : ''}); ` +
    `at most ${BAR_RULES.maxDailyMove}× either way from one trading day to the next`
  );
}

/** A bar of a batch that was refused, by its position in the batch. */
export interface RefusedBar {
  readonly index: number;
  readonly bar: Bar;
  readonly reason: string;
}

export interface BarsVerdict {
  /** The bars that passed, in input order. */
  readonly accepted: Bar[];
  /** The bars that did not, in input order. */
  readonly refused: RefusedBar[];
}

/**
 * Checks a batch of bars of any symbols: each on its own ({@link checkBar}, plus a ticker symbol and a
 * source), then each symbol's accepted bars in time order against the one before ({@link checkMove}),
 * starting from `previous` (the newest stored bar before the batch, per symbol) when given. A refused
 * bar is not a step: the next bar is compared with the last accepted one.
 */
export function validateBars(bars: readonly Bar[], options: { now?: Date; previous?: ReadonlyMap<string, Bar> } = {}): BarsVerdict {
  const latest = latestBarTime(options.now ?? new Date());
  const reasons: Array<string | undefined> = bars.map((bar) => {
    if (typeof bar.symbol !== 'string' || !SYMBOL_PATTERN.test(bar.symbol)) return `symbol ${JSON.stringify(bar.symbol)} is not a ticker`;
    if (typeof bar.source !== 'string' || bar.source.length === 0 || bar.source.length > 64)
      return 'source must be a name of 1-64 characters';
    return checkBar(bar, latest);
  });
  const bySymbol = new Map<string, number[]>();
  bars.forEach((bar, index) => {
    if (reasons[index] !== undefined) return;
    const list = bySymbol.get(bar.symbol);
    if (list) list.push(index);
    else bySymbol.set(bar.symbol, [index]);
  });
  for (const [symbol, indexes] of bySymbol) {
    indexes.sort((a, b) => bars[a]!.time.getTime() - bars[b]!.time.getTime());
    let last: Bar | undefined = options.previous?.get(symbol);
    for (const index of indexes) {
      const bar = bars[index]!;
      const reason = last && last.time.getTime() < bar.time.getTime() ? checkMove(last, bar) : undefined;
      if (reason === undefined) last = bar;
      else reasons[index] = reason;
    }
  }
  const accepted: Bar[] = [];
  const refused: RefusedBar[] = [];
  bars.forEach((bar, index) => {
    const reason = reasons[index];
    if (reason === undefined) accepted.push(bar);
    else refused.push({ index, bar, reason });
  });
  return { accepted, refused };
}

function day(time: Date): string {
  return time.toISOString().slice(0, 10);
}

function formatFactor(factor: number): string {
  return factor >= 1 ? `${Number(factor.toPrecision(3))}×` : `1/${Number((1 / factor).toPrecision(3))} of`;
}
