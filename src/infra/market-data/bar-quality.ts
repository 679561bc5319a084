import { QUALITY_REASONS, type Bar, type QualityReason } from './market-data.js';
import { closedReason, isoDay, sessionsBetween } from './nyse-calendar.js';

/**
 * Data-quality flags: what is suspect about a bar that is still possible. Impossible bars (non-positive
 * or non-finite prices, high below low, open or close outside the range, a future date, a 10× step) are
 * refused by bar-rules.ts and never stored; a suspect bar is stored with its flags, served with them
 * (`Quote.quality`) and left out of training and realized outcomes as {@link QUALITY_POLICY} says.
 * The split and the reasons are in docs/decisions/data-quality.md.
 *
 * | flag           | the bar                                                                                         |
 * |----------------|-------------------------------------------------------------------------------------------------|
 * | `flat_price`   | open = high = low = close with volume > 0: a day of trading at one price is a vendor's stale bar |
 * | `zero_volume`  | no shares traded on a session: the price is carried over, not discovered                          |
 * | `off_calendar` | dated on a day the NYSE was closed (weekend, holiday, closure)                                    |
 * | `session_gap`  | NYSE sessions are missing between the symbol's previous bar and this one                          |
 * | `large_move`   | the adjusted close moved more than N× the symbol's recent volatility                             |
 *
 * Moves are measured on the adjusted close, which the vendor has already adjusted for splits and
 * dividends: a 4-for-1 split quarters the raw close but leaves the adjusted close where it was, so a
 * corporate action never looks like a crash. Only the part of a move that no corporate action explains
 * is left to flag.
 *
 * ```ts
 * const flags = assessSeries(bars);            // one list of flags per bar, bars ascending by time
 * excludedFrom('outcomes', { quality: ['flat_price'] }); // true
 * ```
 */

export { QUALITY_REASONS, type QualityReason };

export function isQualityReason(value: string): value is QualityReason {
  return (QUALITY_REASONS as readonly string[]).includes(value);
}

/** Which uses of a bar each flag takes it out of (docs/decisions/data-quality.md explains each choice). */
export const QUALITY_POLICY: Readonly<Record<QualityReason, { readonly training: boolean; readonly outcomes: boolean }>> = {
  flat_price: { training: true, outcomes: true },
  zero_volume: { training: true, outcomes: true },
  off_calendar: { training: true, outcomes: true },
  session_gap: { training: true, outcomes: true },
  large_move: { training: false, outcomes: false },
};

export type QualityUse = 'training' | 'outcomes';

export interface QualityOptions {
  /** N: a move is `large_move` beyond N × the recent volatility (scaled by √sessions for a step over a gap). */
  readonly moveSigmas?: number;
  /** Daily log returns the recent volatility is measured over. */
  readonly volatilityWindow?: number;
  /** Fewer returns than this before a bar: no volatility yet, no `large_move` judged. */
  readonly minVolatilityReturns?: number;
  /**
   * Floor of the recent volatility (daily, as a log return): after a run of stale bars the measured one
   * is near 0, and every ordinary move would otherwise be "N× volatility".
   */
  readonly volatilityFloor?: number;
}

export const QUALITY_DEFAULTS: Required<QualityOptions> = {
  moveSigmas: 10,
  volatilityWindow: 20,
  minVolatilityReturns: 10,
  volatilityFloor: 0.005,
};

/** What the rules read of a bar. */
export type QualityValues = Pick<Bar, 'time' | 'open' | 'high' | 'low' | 'close' | 'adjClose' | 'volume'>;

/** The flags a bar earns from its prices and volume alone (no calendar, no neighbours). */
export function valueFlags(bar: Omit<QualityValues, 'time' | 'adjClose'>): QualityReason[] {
  const flags: QualityReason[] = [];
  const flat = bar.open === bar.high && bar.high === bar.low && bar.low === bar.close;
  if (flat && bar.volume > 0) flags.push('flat_price');
  if (bar.volume <= 0) flags.push('zero_volume');
  return flags;
}

/** The flags a bar earns on its own: {@link valueFlags} and the NYSE calendar. */
export function ownFlags(bar: QualityValues): QualityReason[] {
  const flags = valueFlags(bar);
  if (closedReason(bar.time) !== undefined) flags.push('off_calendar');
  return flags;
}

/**
 * The flags of every bar of ONE symbol, ascending by time (same order, one list per bar). `context` is
 * the symbol's bars just before `bars` (ascending; already stored, not flagged again): the first new
 * bar's gap and move are judged against them.
 */
export function assessSeries(
  bars: readonly QualityValues[],
  options: QualityOptions & { readonly context?: readonly QualityValues[] } = {},
): QualityReason[][] {
  const settings = { ...QUALITY_DEFAULTS, ...definedOnly(options) };
  const context = options.context ?? [];
  const series = [...context, ...bars];
  const returns: number[] = []; // per-session-normalised log returns before the current bar
  const out: QualityReason[][] = [];
  for (let i = 0; i < series.length; i++) {
    const bar = series[i]!;
    const isNew = i >= context.length;
    const flags = isNew ? ownFlags(bar) : [];
    const previous = series[i - 1];
    if (previous && previous.time < bar.time) {
      const missing = sessionsBetween(previous.time, bar.time).length;
      if (isNew && missing > 0) flags.push('session_gap');
      const step = Math.log(bar.adjClose / previous.adjClose);
      const spanned = missing + 1;
      if (isNew && returns.length >= settings.minVolatilityReturns) {
        const recent = returns.slice(-settings.volatilityWindow);
        const sigma = Math.max(standardDeviation(recent), settings.volatilityFloor);
        if (Math.abs(step) > settings.moveSigmas * sigma * Math.sqrt(spanned)) flags.push('large_move');
      }
      if (Number.isFinite(step)) returns.push(step / Math.sqrt(spanned));
      if (returns.length > settings.volatilityWindow) returns.shift();
    }
    if (isNew) out.push(flags);
  }
  return out;
}

/**
 * The bars of a batch of any symbols with `quality` set, in input order. `previous` holds each symbol's
 * stored bars before the batch (ascending), the context of its first new bars.
 */
export function withQuality(
  bars: readonly Bar[],
  previous: ReadonlyMap<string, readonly Bar[]> = new Map(),
  options: QualityOptions = {},
): Bar[] {
  const bySymbol = new Map<string, number[]>();
  bars.forEach((bar, index) => {
    const list = bySymbol.get(bar.symbol);
    if (list) list.push(index);
    else bySymbol.set(bar.symbol, [index]);
  });
  const result: Bar[] = [...bars];
  for (const [symbol, indexes] of bySymbol) {
    indexes.sort((a, b) => bars[a]!.time.getTime() - bars[b]!.time.getTime());
    const series = indexes.map((i) => bars[i]!);
    const earliest = series[0]!.time;
    const context = (previous.get(symbol) ?? []).filter((bar) => bar.time < earliest);
    const flags = assessSeries(series, { ...options, context });
    indexes.forEach((index, k) => (result[index] = { ...bars[index]!, quality: flags[k]! }));
  }
  return result;
}

/**
 * Whether a bar is left out of `use` by {@link QUALITY_POLICY}. A bar that was never assessed (no
 * `quality`: the synthetic market, which trades every day of the week) is judged on {@link valueFlags}
 * alone: the calendar and the series rules describe NYSE daily bars, which only an assessment knows it has.
 */
export function excludedFrom(
  use: QualityUse,
  bar: Omit<QualityValues, 'time' | 'adjClose'> & { readonly quality?: readonly string[] | undefined },
): boolean {
  const flags = bar.quality ?? valueFlags(bar);
  return flags.some((flag) => isQualityReason(flag) && QUALITY_POLICY[flag][use]);
}

/** One line per flag for people: why `bar` (of a series, `previous` before it) has it. */
export function describeFlag(flag: QualityReason, bar: QualityValues, previous?: QualityValues): string {
  switch (flag) {
    case 'flat_price':
      return `open = high = low = close = ${bar.close} with volume ${bar.volume}`;
    case 'zero_volume':
      return 'volume 0 on a session';
    case 'off_calendar':
      return `${isoDay(bar.time)} is not an NYSE session (${closedReason(bar.time) ?? '?'})`;
    case 'session_gap': {
      const missing = previous ? sessionsBetween(previous.time, bar.time) : [];
      const shown = missing.slice(0, 3).map(isoDay).join(', ');
      return `${missing.length} session(s) missing since ${previous ? isoDay(previous.time) : '?'}: ${shown}${missing.length > 3 ? ', …' : ''}`;
    }
    case 'large_move': {
      const factor = previous ? bar.adjClose / previous.adjClose : Number.NaN;
      return `adjusted close ×${factor.toFixed(3)} from ${previous ? isoDay(previous.time) : '?'}`;
    }
  }
}

function standardDeviation(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance);
}

function definedOnly(options: QualityOptions): QualityOptions {
  return Object.fromEntries(Object.entries(options).filter(([key, value]) => key !== 'context' && value !== undefined)) as QualityOptions;
}
