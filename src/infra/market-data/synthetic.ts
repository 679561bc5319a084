import { mulberry32 } from '../../shared/random.js';
import type { Bar, FetchBarsOptions, MarketDataProvider } from './market-data.js';

/**
 * A seeded synthetic market for machines with no stored bars, so `npm start` serves real model output
 * on a fresh machine. Nothing here pretends to be real: every bar says `source: "synthetic"`.
 *
 * Each symbol follows a GARCH(1,1) process with Student-t shocks (volatility clusters, tails are fat),
 * a small drift, and volume that rises with the size of the move. History is generated once per
 * symbol: `historyBars` daily bars ending the day before `startTime`. After that {@link advance} adds
 * one bar per symbol, stamped with the time it is called: the market "trades" a simulated day per tick,
 * so subscribers see signals within seconds. Like a vendor's, its memory is finite: each symbol keeps its
 * latest `retainBars`, and older bars are dropped as ticks add new ones (otherwise a gateway left running
 * grows without bound: docs/decisions/hot-path-measurements.md).
 *
 * The same seed, symbols and start time always produce the same history, bar for bar.
 */
export interface SyntheticMarketOptions {
  readonly symbols: readonly string[];
  readonly seed: number;
  /** Daily bars of history per symbol before the first tick. */
  readonly historyBars: number;
  /** The first tick's time; history ends on the UTC day before it. */
  readonly startTime: Date;
  /** Most bars kept per symbol once ticks add to the history (default `historyBars`). */
  readonly retainBars?: number;
}

export interface SyntheticMarket extends MarketDataProvider {
  /** Appends one bar per symbol at `time` (default now) and returns them. */
  advance(time?: Date): Bar[];
}

export const DEFAULT_SYNTHETIC_UNIVERSE = [
  'AAPL',
  'MSFT',
  'NVDA',
  'AMZN',
  'GOOGL',
  'META',
  'TSLA',
  'BRK.B',
  'JPM',
  'V',
  'XOM',
  'JNJ',
  'UNH',
  'PG',
  'HD',
  'KO',
  'PEP',
  'CVX',
  'WMT',
  'DIS',
] as const;

const DAY_MS = 86_400_000;

interface SymbolState {
  readonly bars: Bar[];
  readonly random: () => number;
  variance: number;
  readonly params: { omega: number; alpha: number; beta: number; drift: number; baseVolume: number };
}

export function createSyntheticMarket(options: SyntheticMarketOptions): SyntheticMarket {
  const states = new Map<string, SymbolState>();
  const known = new Set(options.symbols);
  const retain = Math.max(1, options.retainBars ?? options.historyBars);
  // Dropping in chunks rather than one bar per tick: splicing the array's head copies all of it.
  const trimAt = retain + Math.max(64, Math.ceil(retain / 8));

  const state = (symbol: string): SymbolState => {
    let s = states.get(symbol);
    if (!s) {
      s = initialState(symbol, options.seed);
      const firstDay = Math.floor(options.startTime.getTime() / DAY_MS) - options.historyBars;
      let price = 20 + 480 * s.random();
      for (let i = 0; i < options.historyBars; i++) price = step(s, symbol, new Date((firstDay + i) * DAY_MS), price);
      states.set(symbol, s);
    }
    return s;
  };

  return {
    name: 'synthetic',
    async fetchBars(symbols: readonly string[], { lookback, until }: FetchBarsOptions) {
      const result = new Map<string, Bar[]>();
      for (const symbol of symbols) {
        if (!known.has(symbol)) continue;
        const bars = state(symbol).bars;
        let end = bars.length;
        if (until) while (end > 0 && bars[end - 1]!.time > until) end--;
        result.set(symbol, bars.slice(Math.max(0, end - lookback), end));
      }
      return result;
    },
    async listSymbols() {
      return [...known].sort();
    },
    advance(time = new Date()) {
      return [...known].map((symbol) => {
        const s = state(symbol);
        const last = s.bars[s.bars.length - 1]!;
        const at = time.getTime() > last.time.getTime() ? time : new Date(last.time.getTime() + 1);
        step(s, symbol, at, last.close);
        if (s.bars.length > trimAt) s.bars.splice(0, s.bars.length - retain);
        return s.bars[s.bars.length - 1]!;
      });
    },
  };
}

function initialState(symbol: string, seed: number): SymbolState {
  const random = mulberry32(hashString(symbol) ^ seed);
  const dailyVol = 0.012 + 0.02 * random(); // 1.2%..3.2% a day, between a utility and a momentum stock
  const alpha = 0.06 + 0.04 * random();
  const beta = 0.9 - 0.05 * random();
  return {
    bars: [],
    random,
    variance: dailyVol ** 2,
    params: { omega: dailyVol ** 2 * (1 - alpha - beta), alpha, beta, drift: 0.0003 * (random() - 0.3), baseVolume: 2e6 + 5e7 * random() },
  };
}

/** One GARCH step: draws the bar after `previousClose` at `time`, appends it, returns its close. */
function step(s: SymbolState, symbol: string, time: Date, previousClose: number): number {
  const { omega, alpha, beta, drift, baseVolume } = s.params;
  const shock = studentT(s.random, 4) * Math.sqrt(s.variance);
  const ret = drift + shock;
  s.variance = omega + alpha * shock ** 2 + beta * s.variance;
  const open = previousClose * Math.exp(0.2 * Math.sqrt(s.variance) * gaussian(s.random));
  const close = previousClose * Math.exp(ret);
  const wiggle = Math.sqrt(s.variance) * Math.abs(gaussian(s.random)) * 0.5;
  const high = Math.max(open, close) * Math.exp(wiggle);
  const low = Math.min(open, close) * Math.exp(-wiggle * (0.5 + s.random()));
  const volume = Math.round(baseVolume * Math.exp(0.3 * gaussian(s.random)) * (1 + 25 * Math.abs(shock)));
  s.bars.push({
    symbol,
    time,
    open: round(open),
    high: round(high),
    low: round(low),
    close: round(close),
    adjClose: round(close),
    volume,
    source: 'synthetic',
  });
  return round(close);
}

const round = (price: number) => Math.round(price * 10_000) / 10_000;

/** Student-t with `df` degrees of freedom, scaled to unit variance. */
function studentT(random: () => number, df: number): number {
  let chi2 = 0;
  for (let i = 0; i < df; i++) chi2 += gaussian(random) ** 2;
  return (gaussian(random) / Math.sqrt(chi2 / df)) * Math.sqrt((df - 2) / df);
}

function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
