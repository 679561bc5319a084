import DataLoader from 'dataloader';
import type { CacheTier } from '../../infra/cache/tier.js';
import type { Logger } from '../../infra/logger/logger.js';
import { inSpan } from '../../infra/tracing/tracing.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { MarketUnavailableError, isStaleBars } from '../../infra/market-data/resilient.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { applyPlatt } from '../../domain/calibration.js';
import { FEATURE_NAMES, FEATURE_WINDOW, computeFeatures } from '../../domain/features.js';
import { signalOf, type Signal } from '../../domain/signal.js';
import { findStrategy } from '../../domain/strategies.js';
import type { ModelRegistry, ModelVersionEntry, Serving } from '../models/index.js';
import { invalidFeatures, invalidNumbers, invalidProbability, modelOutputInvalid } from './output-guard.js';
import { unavailableBecause } from './unavailable.js';

/** A served prediction, before GraphQL shapes it. */
export interface PredictionRecord {
  readonly symbol: string;
  readonly strategy: string;
  readonly horizon: string;
  readonly asOf: Date;
  readonly signal: Signal;
  readonly probability: number;
  readonly confidence: number;
  /** No return model is served yet, so this is null rather than a guess. */
  readonly expectedReturn: number | null;
  readonly featuresHash: string;
  readonly stale: boolean;
  readonly quote: Bar;
  readonly model: ModelVersionEntry;
  /** The 20-bar volatility the interval scales with. */
  readonly volatility: number;
  /** The feature vector the model saw, in FEATURE_NAMES order (explanations perturb it). */
  readonly features: readonly number[];
  /** Set on point-in-time answers only (predictions.as-of.ts): what was asked and how the version was chosen. */
  readonly pointInTime?: PointInTimeNote;
}

/** How a point-in-time prediction was answered. */
export interface PointInTimeNote {
  /** The instant asked about; the prediction's `asOf` is the last stored bar at or before it. */
  readonly requested: Date;
  readonly versionChosenBy: VersionChoice;
}

/** Why a point-in-time prediction used its version. */
export type VersionChoice = 'REQUESTED' | 'RECORDED_ACTIVE' | 'CURRENT_ACTIVE';

export interface CachedFeatures {
  values: number[];
  hash: string;
}

export interface PredictionCaches {
  readonly market: CacheTier<Bar[]>;
  readonly features: CacheTier<CachedFeatures>;
  readonly predictions: CacheTier<number>;
}

/** Per-request loaders: built by the context factory for every HTTP request or WebSocket operation. */
export interface PredictionLoaders {
  readonly bars: DataLoader<string, Bar[] | undefined>;
  readonly prediction: DataLoader<PredictionKey, PredictionRecord>;
}

export interface PredictionKey {
  readonly strategy: string;
  readonly symbol: string;
}

const VOLATILITY = FEATURE_NAMES.indexOf('vol_20d');

/**
 * Market bars → features → ONNX → calibrated probability, signal and confidence.
 *
 * Batching happens at two levels. Within a request, DataLoader collects every symbol the request
 * touches: one market fetch for all of them, and one scoring call per model version. Across requests,
 * each model's micro-batcher merges the scoring calls that arrive in the same event-loop turn (or
 * within the configured queue delay) into one inference run.
 */
export class PredictionService {
  constructor(
    private readonly market: MarketDataProvider,
    private readonly registry: ModelRegistry,
    private readonly caches: PredictionCaches,
    readonly maxSymbolsPerRequest: number,
    private readonly logger: Logger,
    /** Receives every prediction served (history records each once); must not throw or block. */
    private readonly onServed: (records: readonly PredictionRecord[]) => void = () => undefined,
    /** Receives the shadow version's predictions (recorded in history, never served); must not throw or block. */
    private readonly onShadow: (records: readonly PredictionRecord[]) => void = () => undefined,
  ) {}

  createLoaders(): PredictionLoaders {
    const bars = new DataLoader<string, Bar[] | undefined>((symbols) => this.loadBars(symbols), { maxBatchSize: 5_000 });
    const prediction = new DataLoader<PredictionKey, PredictionRecord, string>((keys) => this.predict(keys, bars), {
      cacheKeyFn: (key) => `${key.strategy}\u0000${key.symbol}`,
    });
    return { bars, prediction };
  }

  /** The model version serving `strategy`, or a coded error saying why there is none. */
  activeModel(strategy: string): ModelVersionEntry {
    return this.serving(strategy).active;
  }

  /** What serves `strategy` (active and shadow versions), or a coded error saying why nothing does. */
  serving(strategy: string): Serving {
    const serving = this.registry.serving(strategy);
    if (serving) return serving;
    if (!findStrategy(strategy)) {
      throw codedError(
        ErrorCode.UNKNOWN_STRATEGY,
        `Unknown strategy "${strategy}"; known: ${this.registry.strategies().join(', ') || '(none loaded)'}`,
      );
    }
    throw codedError(ErrorCode.UNAVAILABLE, `No model version of "${strategy}" is loaded on this instance`);
  }

  /** Every symbol the market data answers for, sorted: what a client may ask predictions of. */
  symbols(): Promise<string[]> {
    return this.market.listSymbols();
  }

  /**
   * Predictions from the provider's newest bars, for the live-signals monitor: the market cache is
   * skipped (a bar that just arrived must not wait for a cached one to expire) and refreshed with what
   * was fetched, so queries see the new bar at once too. Everything after the fetch is the query path:
   * one scoring call per model version for all keys, and every prediction goes to `onServed` (history)
   * before this resolves.
   */
  predictLatest(keys: readonly PredictionKey[]): Promise<Array<PredictionRecord | Error>> {
    const bars = new DataLoader<string, Bar[] | undefined>((symbols) => this.loadBars(symbols, { fresh: true }), { maxBatchSize: 5_000 });
    return this.predict(keys, bars);
  }

  /**
   * Predictions for bars the live-signals monitor has not published yet: for each key, every bar of
   * its symbol after `after` and before `before` (the newest bar, which predictLatest covers), at most
   * `maxBars` per key (the newest of them; `truncated` lists the keys that had more), oldest first.
   * Each bar is predicted from the window ending at it, as it was when it was the newest, and goes to
   * `onServed` (history) like every prediction. Stale bars (the provider failing) are not caught up.
   * Rejects when the bars cannot be fetched.
   */
  async predictMissed(
    keys: ReadonlyArray<PredictionKey & { readonly after: Date; readonly before: Date }>,
    maxBars: number,
  ): Promise<{ records: PredictionRecord[]; truncated: PredictionKey[] }> {
    if (keys.length === 0 || maxBars <= 0) return { records: [], truncated: [] };
    const symbols = [...new Set(keys.map((k) => k.symbol))];
    // Most ticks follow the previous bar directly, and most gaps are a few bars: the newest PROBE bars
    // show which, and how many bars the windows of the missed ones need. Neither fetch names an
    // `until`, so the resilient layer remembers a few answers per symbol, not one per tick.
    const PROBE = 8;
    const SLACK = 4; // bars that may arrive between the probe and the fetch
    const probe = await this.market.fetchBars(symbols, { lookback: PROBE });
    let lookback = 0;
    const gapped = keys.filter((key) => {
      const list = probe.get(key.symbol) ?? [];
      const after = key.after.getTime();
      const newer = list.filter((b) => b.time.getTime() > after).length;
      const sized = newer < list.length; // the probe reaches back to `after`: the gap is all in it
      if (sized && !list.some((b) => b.time.getTime() > after && b.time.getTime() < key.before.getTime())) return false;
      lookback = Math.max(lookback, FEATURE_WINDOW + (sized ? newer : maxBars) + SLACK);
      return true;
    });
    if (gapped.length === 0) return { records: [], truncated: [] };
    const fetched = await this.market.fetchBars([...new Set(gapped.map((k) => k.symbol))], { lookback });
    // Per bar time, the keys missing it and each symbol's window ending at it: one prediction call per time.
    const byTime = new Map<number, { keys: PredictionKey[]; windows: Map<string, Bar[]> }>();
    const truncated: PredictionKey[] = [];
    for (const key of gapped) {
      const list = fetched.get(key.symbol);
      if (!list || isStaleBars(list)) continue;
      const after = key.after.getTime();
      const before = key.before.getTime();
      let missed: number[] = [];
      for (let i = FEATURE_WINDOW - 1; i < list.length; i++) {
        const time = list[i]!.time.getTime();
        if (time > after && time < before) missed.push(i);
      }
      // A bar after `after` too early in the fetched list to have a whole window before it: the gap
      // reaches further back than was fetched.
      const beforeFirst = list[FEATURE_WINDOW - 2];
      if (missed.length > maxBars || (beforeFirst && beforeFirst.time.getTime() > after))
        truncated.push({ strategy: key.strategy, symbol: key.symbol });
      if (missed.length > maxBars) missed = missed.slice(-maxBars);
      for (const i of missed) {
        const time = list[i]!.time.getTime();
        let group = byTime.get(time);
        if (!group) byTime.set(time, (group = { keys: [], windows: new Map() }));
        group.keys.push({ strategy: key.strategy, symbol: key.symbol });
        group.windows.set(key.symbol, list.slice(i + 1 - FEATURE_WINDOW, i + 1));
      }
    }
    const times = [...byTime.keys()].sort((a, b) => a - b);
    // Started together, so each model's micro-batcher may merge the calls into fewer inference runs.
    const results = await Promise.all(
      times.map((time) => {
        const { keys: atTime, windows } = byTime.get(time)!;
        const loader = new DataLoader<string, Bar[] | undefined>(async (wanted) => wanted.map((s) => windows.get(s)), {
          maxBatchSize: 5_000,
        });
        return this.predict(atTime, loader);
      }),
    );
    const records = results.flat().filter((r): r is PredictionRecord => !(r instanceof Error));
    return { records, truncated };
  }

  /**
   * Bars per symbol: cached (unless `fresh`), else fetched in one call. While the provider fails, the
   * resilient wrapper answers with the last good bars marked stale; those are served (the prediction
   * says `stale`) but never cached, so the first fresh answer after recovery replaces them at once. A
   * symbol with no last good bars gets the failure as its own error.
   */
  private async loadBars(symbols: readonly string[], options: { fresh?: boolean } = {}): Promise<Array<Bar[] | undefined | Error>> {
    const cached = options.fresh
      ? symbols.map(() => undefined)
      : await this.caches.market.getMany(symbols.map((s) => `${this.market.name}:${s}`));
    const missing = symbols.filter((_, i) => cached[i] === undefined);
    let fetched = new Map<string, Bar[]>();
    let failure: MarketUnavailableError | undefined;
    if (missing.length) {
      try {
        fetched = await this.market.fetchBars(missing, { lookback: FEATURE_WINDOW });
      } catch (error) {
        if (!(error instanceof MarketUnavailableError)) throw error;
        failure = error;
        fetched = new Map(error.stale);
      }
      const fresh = [...fetched].filter(([, list]) => !isStaleBars(list));
      await this.caches.market.setMany(fresh.map(([symbol, list]) => ({ key: `${this.market.name}:${symbol}`, value: list })));
    }
    return symbols.map((symbol, i) => cached[i] ?? fetched.get(symbol) ?? failure);
  }

  private async predict(
    keys: readonly PredictionKey[],
    barsLoader: DataLoader<string, Bar[] | undefined>,
  ): Promise<Array<PredictionRecord | Error>> {
    const results: Array<PredictionRecord | Error> = new Array(keys.length);
    // Read once, before anything is awaited: the whole batch runs on these versions (and shadows) even
    // if an activation switches a strategy while it runs.
    const servingOf = new Map<string, Serving | Error>();
    for (const { strategy } of keys) {
      if (servingOf.has(strategy)) continue;
      try {
        servingOf.set(strategy, this.serving(strategy));
      } catch (error) {
        servingOf.set(strategy, error as Error);
      }
    }
    const symbols = [...new Set(keys.map((k) => k.symbol))];
    const bars = await barsLoader.loadMany(symbols);
    const barsBySymbol = new Map<string, Bar[] | undefined | Error>();
    symbols.forEach((symbol, i) => barsBySymbol.set(symbol, bars[i]));

    // Features: once per (symbol, last bar), whatever the number of strategies asking.
    const featureKeys = new Map<string, string>(); // symbol → cache key
    for (const [symbol, list] of barsBySymbol) {
      if (Array.isArray(list) && list.length >= FEATURE_WINDOW) {
        const last = list[list.length - 1]!;
        featureKeys.set(symbol, `${symbol}:${last.time.getTime()}:${last.source}:${last.adjClose}`);
      }
    }
    const featureList = [...featureKeys];
    const features = await inSpan('features.compute', { 'sibyl.symbols': featureList.length }, async (span) => {
      const cachedFeatures = await this.caches.features.getMany(featureList.map(([, key]) => key));
      const vectors = new Map<string, CachedFeatures>();
      const computed: Array<{ key: string; value: CachedFeatures }> = [];
      featureList.forEach(([symbol, key], i) => {
        let value = cachedFeatures[i];
        if (!value) {
          const vector = computeFeatures(barsBySymbol.get(symbol) as Bar[]);
          value = { values: Array.from(vector.values), hash: vector.hash };
          // A non-finite vector is never cached: JSON would store Infinity as null, and it would come
          // back as a different, finite-looking input.
          if (invalidFeatures(value.values) === undefined) computed.push({ key, value });
        }
        vectors.set(symbol, value);
      });
      span.setAttribute('sibyl.features_computed', computed.length);
      await this.caches.features.setMany(computed);
      return vectors;
    });

    const byStrategy = new Map<string, number[]>();
    keys.forEach((key, index) => {
      const indexes = byStrategy.get(key.strategy);
      if (indexes) indexes.push(index);
      else byStrategy.set(key.strategy, [index]);
    });
    await Promise.all(
      [...byStrategy].map(async ([strategy, indexes]) => {
        const serving = servingOf.get(strategy)!;
        if (serving instanceof Error) {
          for (const i of indexes) results[i] = serving;
          return;
        }
        const model = serving.active;
        const ready: number[] = [];
        for (const i of indexes) {
          const { symbol } = keys[i]!;
          const list = barsBySymbol.get(symbol);
          if (list instanceof Error) results[i] = unavailableBecause('market data', list, this.logger);
          else if (!list || list.length === 0)
            results[i] = codedError(ErrorCode.UNKNOWN_SYMBOL, `Unknown symbol "${symbol}": no market data for it`, { symbol });
          else if (list.length < FEATURE_WINDOW) {
            results[i] = codedError(ErrorCode.UNAVAILABLE, `"${symbol}" has ${list.length} bars; predictions need ${FEATURE_WINDOW}`, {
              symbol,
            });
          } else {
            const problem = invalidFeatures(features.get(symbol)!.values);
            if (problem) results[i] = modelOutputInvalid('prediction', symbol, problem, this.logger);
            else ready.push(i);
          }
        }
        const vectors = ready.map((i) => features.get(keys[i]!.symbol)!);
        // The shadow scores the same vectors in its own run, started with the active one; the response
        // never waits for it, and its failure costs only its own history rows.
        if (serving.shadow && ready.length > 0)
          this.shadowScore(
            serving.shadow,
            ready.map((i) => keys[i]!.symbol),
            barsBySymbol,
            features,
          );
        let probabilities: number[];
        try {
          probabilities = await this.score(model, vectors);
        } catch (error) {
          for (const i of ready)
            results[i] = unavailableBecause(`inference (${model.manifest.strategy}@${model.manifest.version})`, error, this.logger);
          return;
        }
        // Only predictions whose every number is servable are answered and recorded; the others are
        // their own item's MODEL_OUTPUT_INVALID.
        const served: PredictionRecord[] = [];
        ready.forEach((i, n) => {
          const { symbol } = keys[i]!;
          const record = this.record(model, symbol, barsBySymbol.get(symbol) as Bar[], features.get(symbol)!, probabilities[n]!);
          const problem = invalidPrediction(record);
          if (problem)
            results[i] = modelOutputInvalid(
              `prediction (${model.manifest.strategy}@${model.manifest.version})`,
              symbol,
              problem,
              this.logger,
            );
          else served.push((results[i] = record));
        });
        this.onServed(served);
      }),
    );
    return results;
  }

  private shadowScore(
    shadow: ModelVersionEntry,
    symbols: readonly string[],
    barsBySymbol: ReadonlyMap<string, Bar[] | undefined | Error>,
    features: ReadonlyMap<string, CachedFeatures>,
  ): void {
    this.score(
      shadow,
      symbols.map((symbol) => features.get(symbol)!),
    )
      .then((probabilities) =>
        this.onShadow(
          symbols
            .map((symbol, n) => this.record(shadow, symbol, barsBySymbol.get(symbol) as Bar[], features.get(symbol)!, probabilities[n]!))
            .filter((record) => invalidPrediction(record) === undefined),
        ),
      )
      .catch(
        (error: unknown) =>
          void unavailableBecause(`shadow inference (${shadow.manifest.strategy}@${shadow.manifest.version})`, error, this.logger),
      );
  }

  /** Calibrated probabilities for feature vectors: cached ones from the cache, the rest in ONE run. */
  private async score(model: ModelVersionEntry, vectors: readonly CachedFeatures[]): Promise<number[]> {
    const { manifest } = model;
    const cacheKeys = vectors.map((v) => `${manifest.strategy}:${manifest.version}:${v.hash}`);
    const cached = await this.caches.predictions.getMany(cacheKeys);
    const missing = vectors.map((_, i) => i).filter((i) => cached[i] === undefined);
    if (missing.length === 0) return cached as number[];
    const width = model.featureOrder.length;
    const input = new Float32Array(missing.length * width);
    missing.forEach((i, row) => {
      const values = vectors[i]!.values;
      model.featureOrder.forEach((featureIndex, column) => (input[row * width + column] = values[featureIndex]!));
    });
    const raw = await model.batcher.score(input, missing.length);
    const fresh: Array<{ key: string; value: number }> = [];
    const out = [...cached] as number[];
    missing.forEach((i, row) => {
      out[i] = applyPlatt(manifest.calibration, raw[row]!);
      // NaN would be cached as null (JSON) and served as a missing probability; it is refused per item instead.
      if (invalidProbability(out[i]!) === undefined) fresh.push({ key: cacheKeys[i]!, value: out[i]! });
    });
    await this.caches.predictions.setMany(fresh);
    return out;
  }

  private record(
    model: ModelVersionEntry,
    symbol: string,
    bars: readonly Bar[],
    features: CachedFeatures,
    probability: number,
  ): PredictionRecord {
    return predictionRecord(model, symbol, bars, features, probability);
  }
}

/** The prediction `model` makes with `probability` from `features` computed at the last of `bars`. */
export function predictionRecord(
  model: ModelVersionEntry,
  symbol: string,
  bars: readonly Bar[],
  features: CachedFeatures,
  probability: number,
): PredictionRecord {
  const quote = bars.at(-1)!;
  const stale = isStaleBars(bars);
  const { manifest } = model;
  const signal = signalOf(manifest.signal, probability);
  return {
    symbol,
    strategy: manifest.strategy,
    horizon: manifest.horizon,
    asOf: quote.time,
    signal,
    probability,
    confidence: confidenceOf(signal, probability),
    expectedReturn: null,
    featuresHash: features.hash,
    stale,
    quote,
    model,
    volatility: features.values[VOLATILITY]!,
    features: features.values,
  };
}

/**
 * The calibrated probability that the signal is right: P(up) for BUY, P(not up) for SELL, and for
 * HOLD the probability of the likelier direction (HOLD says the model does not lean far enough to act).
 */
export function confidenceOf(signal: Signal, probability: number): number {
  if (signal === 'BUY') return probability;
  if (signal === 'SELL') return 1 - probability;
  return Math.max(probability, 1 - probability);
}

/** The price range for the horizon at `level`, from the manifest's split-conformal quantiles. */
export function priceInterval(record: PredictionRecord, level: number): { level: number; low: number; high: number } {
  const { interval } = record.model.manifest;
  const q = interval.quantiles[String(level)];
  if (q === undefined) {
    throw codedError(
      ErrorCode.BAD_USER_INPUT,
      `interval level ${level} is not calibrated for this model; use one of ${Object.keys(interval.quantiles).join(', ')}`,
    );
  }
  const bounds = intervalAt(record, q);
  // Served records were checked at every calibrated level (invalidPrediction); this only guards a caller that skipped that.
  const problem = invalidNumbers({ 'interval.low': bounds.low, 'interval.high': bounds.high });
  if (problem)
    throw codedError(ErrorCode.MODEL_OUTPUT_INVALID, `the interval for "${record.symbol}" cannot be served: ${problem}`, {
      symbol: record.symbol,
    });
  return { level, ...bounds };
}

function intervalAt(record: PredictionRecord, q: number): { low: number; high: number } {
  const { interval, horizonBars } = record.model.manifest;
  const spread = q * Math.max(record.volatility, 1e-6) * Math.sqrt(horizonBars);
  return { low: record.quote.close * Math.exp(interval.center - spread), high: record.quote.close * Math.exp(interval.center + spread) };
}

/**
 * Why a prediction cannot be served or recorded, or undefined: every number a client can read from it
 * (probability, confidence, expected return, the quote, the interval at every calibrated level) must be
 * finite, the probability in [0, 1].
 */
export function invalidPrediction(record: PredictionRecord): string | undefined {
  const problem =
    invalidProbability(record.probability) ??
    invalidNumbers({ confidence: record.confidence, expectedReturn: record.expectedReturn, volatility: record.volatility }) ??
    invalidNumbers({
      'quote.open': record.quote.open,
      'quote.high': record.quote.high,
      'quote.low': record.quote.low,
      'quote.close': record.quote.close,
      'quote.volume': record.quote.volume,
    }) ??
    invalidFeatures(record.features);
  if (problem) return problem;
  for (const [level, q] of Object.entries(record.model.manifest.interval.quantiles)) {
    const { low, high } = intervalAt(record, q);
    const bad = invalidNumbers({ [`interval(level: ${level}).low`]: low, [`interval(level: ${level}).high`]: high });
    if (bad) return bad;
  }
  return undefined;
}
