import { createHash } from 'node:crypto';
import type { Bar } from '../infra/market-data/market-data.js';

/**
 * The feature pipeline: a pure, deterministic function from the bars up to and including `asOf` to a
 * vector of numbers. Training and serving call the same function on the same window, so there is no
 * training/serving skew; {@link featuresHash} fingerprints the exact vector a model saw.
 *
 * Inputs, and why:
 * - Returns and moving averages use `adjClose` only: raw closes jump at splits and spin-offs.
 * - Liquidity uses dollar volume (raw close × raw volume), which does not change at a split, where raw
 *   volume alone jumps by the split ratio (AAPL's volume rises ~4× at its 2020 split).
 * - Exactly {@link FEATURE_WINDOW} bars are used, even where an indicator could look further back, so
 *   the exponential averages (MACD) depend on nothing outside the window and are exactly reproducible.
 *
 * Bump {@link FEATURE_SET_VERSION} whenever a definition changes: models record the version they were
 * trained on, and the gateway refuses to serve a model with another one.
 */
export const FEATURE_SET_VERSION = 'f1';
export const FEATURE_WINDOW = 100;

export interface FeatureDefinition {
  readonly name: string;
  readonly description: string;
}

export const FEATURES: readonly FeatureDefinition[] = [
  { name: 'ret_1d', description: '1-bar log return of the adjusted close' },
  { name: 'ret_5d', description: '5-bar log return' },
  { name: 'ret_20d', description: '20-bar log return (one-month momentum)' },
  { name: 'ret_60d', description: '60-bar log return (three-month momentum)' },
  { name: 'vol_20d', description: 'standard deviation of 1-bar log returns over 20 bars' },
  { name: 'vol_ratio_5_20', description: '5-bar volatility divided by 20-bar volatility (volatility regime change)' },
  { name: 'rsi_14', description: "Wilder's 14-bar RSI, scaled to 0..1" },
  { name: 'macd_hist', description: 'MACD(12,26) minus its 9-bar signal, relative to price' },
  { name: 'ma_dist_20', description: 'adjusted close relative to its 20-bar mean' },
  { name: 'ma_dist_50', description: 'adjusted close relative to its 50-bar mean' },
  { name: 'range_pos_20', description: 'position of the close within the 20-bar low..high of adjusted closes, 0..1' },
  { name: 'dollar_volume_z20', description: 'z-score of log dollar volume against the previous 20 bars' },
  { name: 'hl_range', description: "the bar's high-low range relative to its close" },
];

export const FEATURE_NAMES: readonly string[] = FEATURES.map((f) => f.name);

export interface FeatureVector {
  readonly symbol: string;
  /** Time of the last bar used: the prediction's `asOf`. */
  readonly asOf: Date;
  readonly values: Float64Array;
  readonly hash: string;
}

export class InsufficientHistoryError extends Error {
  constructor(
    readonly symbol: string,
    readonly available: number,
  ) {
    super(`${symbol}: ${available} bars available, features need ${FEATURE_WINDOW}`);
    this.name = 'InsufficientHistoryError';
  }
}

/**
 * Features at the last bar of `bars` (ascending by time). Uses the last {@link FEATURE_WINDOW} bars;
 * throws {@link InsufficientHistoryError} with fewer.
 */
export function computeFeatures(bars: readonly Bar[]): FeatureVector {
  const last = bars[bars.length - 1];
  if (!last || bars.length < FEATURE_WINDOW) throw new InsufficientHistoryError(last?.symbol ?? '?', bars.length);
  const window = bars.length === FEATURE_WINDOW ? bars : bars.slice(bars.length - FEATURE_WINDOW);
  const adj = new Float64Array(FEATURE_WINDOW);
  const logDollarVolume = new Float64Array(FEATURE_WINDOW);
  for (let i = 0; i < FEATURE_WINDOW; i++) {
    const bar = window[i]!;
    adj[i] = bar.adjClose;
    // +1 keeps a zero-volume bar (a known vendor error) finite instead of -Infinity.
    logDollarVolume[i] = Math.log(bar.close * bar.volume + 1);
  }
  const values = featuresFromSeries(adj, logDollarVolume, last);
  return { symbol: last.symbol, asOf: last.time, values, hash: featuresHash(values) };
}

/** The vector for the last element of the series. Exported for training, which slides over long series. */
export function featuresFromSeries(
  adj: Float64Array,
  logDollarVolume: Float64Array,
  lastBar: Pick<Bar, 'high' | 'low' | 'close'>,
): Float64Array {
  const n = adj.length;
  const price = adj[n - 1]!;
  const returns = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) returns[i - 1] = Math.log(adj[i]! / adj[i - 1]!);

  const logReturn = (bars: number) => Math.log(price / adj[n - 1 - bars]!);
  const vol20 = stdev(returns, returns.length - 20, returns.length);
  const vol5 = stdev(returns, returns.length - 5, returns.length);

  const out = new Float64Array(FEATURES.length);
  out[0] = logReturn(1);
  out[1] = logReturn(5);
  out[2] = logReturn(20);
  out[3] = logReturn(60);
  out[4] = vol20;
  out[5] = vol20 > TINY ? vol5 / vol20 : 1;
  out[6] = rsi(adj, 14);
  out[7] = macdHistogram(adj) / price;
  out[8] = price / mean(adj, n - 20, n) - 1;
  out[9] = price / mean(adj, n - 50, n) - 1;
  const [low, high] = minMax(adj, n - 20, n);
  out[10] = high > low ? (price - low) / (high - low) : 0.5;
  const dvStd = stdev(logDollarVolume, n - 21, n - 1);
  out[11] = dvStd > TINY ? (logDollarVolume[n - 1]! - mean(logDollarVolume, n - 21, n - 1)) / dvStd : 0;
  out[12] = lastBar.close > 0 ? (lastBar.high - lastBar.low) / lastBar.close : 0;
  return out;
}

/**
 * A short fingerprint of a feature vector and the feature-set version: two predictions with the same
 * hash and model version are the same prediction, which is what the prediction cache keys on.
 */
export function featuresHash(values: Float64Array): string {
  return createHash('sha256')
    .update(FEATURE_SET_VERSION)
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex')
    .slice(0, 32);
}

/**
 * Below this a dispersion is rounding noise, not signal: the sample deviation of identical values comes
 * out near 1e-15 rather than 0, and dividing by it would turn noise into a large z-score.
 */
const TINY = 1e-9;

function mean(xs: Float64Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += xs[i]!;
  return sum / (to - from);
}

/** Sample standard deviation of xs[from..to). */
function stdev(xs: Float64Array, from: number, to: number): number {
  const m = mean(xs, from, to);
  let ss = 0;
  for (let i = from; i < to; i++) ss += (xs[i]! - m) ** 2;
  return Math.sqrt(ss / (to - from - 1));
}

function minMax(xs: Float64Array, from: number, to: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i < to; i++) {
    lo = Math.min(lo, xs[i]!);
    hi = Math.max(hi, xs[i]!);
  }
  return [lo, hi];
}

/** Wilder's RSI over the whole series (seeded with the first `period` changes), scaled to 0..1. */
function rsi(prices: Float64Array, period: number): number {
  let gain = 0;
  let loss = 0;
  for (let i = 1; i <= period; i++) {
    const change = prices[i]! - prices[i - 1]!;
    if (change > 0) gain += change;
    else loss -= change;
  }
  gain /= period;
  loss /= period;
  for (let i = period + 1; i < prices.length; i++) {
    const change = prices[i]! - prices[i - 1]!;
    gain = (gain * (period - 1) + Math.max(change, 0)) / period;
    loss = (loss * (period - 1) + Math.max(-change, 0)) / period;
  }
  if (gain + loss === 0) return 0.5;
  return gain / (gain + loss);
}

/** MACD(12, 26) minus its 9-period EMA, with every EMA seeded at the first value of the window. */
function macdHistogram(prices: Float64Array): number {
  const k12 = 2 / 13;
  const k26 = 2 / 27;
  const k9 = 2 / 10;
  let ema12 = prices[0]!;
  let ema26 = prices[0]!;
  let signal = 0;
  for (let i = 1; i < prices.length; i++) {
    ema12 += k12 * (prices[i]! - ema12);
    ema26 += k26 * (prices[i]! - ema26);
    signal += k9 * (ema12 - ema26 - signal);
  }
  return ema12 - ema26 - signal;
}
