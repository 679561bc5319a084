/**
 * The market-data contract. A provider answers for MANY symbols in one call: the gateway batches every
 * symbol of a request (and of concurrent requests) into a single fetch, so an implementation must
 * never turn one call into one query per symbol.
 *
 * Engines: `bars-store.ts` (bars stored in PostgreSQL/PGlite: imported CSVs, recorded feeds),
 * `synthetic.ts` (a seeded market for machines with no data), and `vendor-http.ts` (the shape of a
 * vendor adapter with timeouts, retries and a circuit breaker).
 */

/** Data-quality flags a bar can carry; what each means and does is in bar-quality.ts. */
export const QUALITY_REASONS = ['flat_price', 'zero_volume', 'off_calendar', 'session_gap', 'large_move'] as const;
export type QualityReason = (typeof QUALITY_REASONS)[number];

/** One OHLCV bar. Prices are as traded; `adjClose` is adjusted for splits and dividends (use it for returns). */
export interface Bar {
  readonly symbol: string;
  /** Start of the bar. Daily bars are stamped at 00:00 UTC of their trading date. */
  readonly time: Date;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly adjClose: number;
  readonly volume: number;
  /** Where the bar came from: `alphavantage`, `yahoo`, `synthetic`, a vendor name. */
  readonly source: string;
  /**
   * Data-quality flags (bar-quality.ts: `flat_price`, `session_gap`, …), empty when the bar was checked
   * and found clean; absent when it never was (the synthetic market).
   */
  readonly quality?: readonly QualityReason[];
}

export interface FetchBarsOptions {
  /** How many bars per symbol, counting back from `until` (inclusive). */
  readonly lookback: number;
  /** Latest bar time to include; default: the newest available. */
  readonly until?: Date | undefined;
}

export interface MarketDataProvider {
  /** Label for metrics (`sibyl_market_fetches_total{provider}`) and logs. */
  readonly name: string;
  /**
   * The last `lookback` bars at or before `until` for each requested symbol, ascending by time, in ONE
   * round trip. Symbols the provider does not know are absent from the result (not an error).
   */
  fetchBars(symbols: readonly string[], options: FetchBarsOptions): Promise<Map<string, Bar[]>>;
  /** Every symbol this provider can answer for, sorted. */
  listSymbols(): Promise<string[]>;
}

/** Symbols are upper-case tickers such as `AAPL` or `BRK.B`. */
export const SYMBOL_PATTERN = /^[A-Z][A-Z0-9.-]{0,9}$/;

/**
 * The markets a prediction can be made from, as history records them (`market_source`; see
 * docs/decisions/market-source.md): every provider reading the bars store (imported CSVs, vendor feeds,
 * replays of stored bars) serves the `stored` market; the seeded generator serves `synthetic`. Rows
 * recorded before migration 0009 that no stored bar vouches for are `unknown`.
 */
export const STORED_MARKET = 'stored';
export const SYNTHETIC_MARKET = 'synthetic';
/** Rows recorded before predictions carried their market, that nothing vouches for (migration 0009). */
export const UNKNOWN_MARKET = 'unknown';
