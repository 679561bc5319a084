import DataLoader from 'dataloader';
import type { CacheTier } from '../../infra/cache/tier.js';
import type { Logger } from '../../infra/logger/logger.js';
import { inSpan } from '../../infra/tracing/tracing.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { MarketUnavailableError, isStaleBars } from '../../infra/market-data/resilient.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { applyPlatt } from '../../domain/calibration.js';
import { FEATURE_WINDOW, computeFeatures } from '../../domain/features.js';
import { findStrategy } from '../../domain/strategies.js';
import type { ModelRegistry, ModelVersionEntry, Serving } from '../models/index.js';
import { invalidFeatures, invalidProbability, modelOutputInvalid } from './output-guard.js';
import { invalidPrediction, recordOf, type CachedFeatures, type PredictionRecord, type PredictionSink } from './prediction.record.js';
import { unavailableBecause } from './unavailable.js';

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

export interface PredictionServiceOptions {
  /** Bars for features (the resilient, coalescing provider). */
  readonly market: MarketDataProvider;
  readonly registry: ModelRegistry;
  readonly caches: PredictionCaches;
  readonly maxSymbolsPerRequest: number;
  readonly logger: Logger;
  /** Where served and shadow predictions are recorded (history); nowhere when absent. */
  readonly sink?: PredictionSink;
  /**
   * Told of symbols the moment they start being served from the last good bars (marked stale) because
   * the market fails: what their predictions say changes then, with no new bar (the response cache).
   */
  readonly onStaleBars?: (symbols: readonly string[]) => void;
}

/**
 * Market bars → features → ONNX → calibrated probability, signal and confidence.
 *
 * Batching happens at two levels. Within a request, DataLoader collects every symbol the request
 * touches: one market fetch for all of them, and one scoring call per model version. Across requests,
 * each model's micro-batcher merges the scoring calls that arrive in the same event-loop turn (or
 * within the configured queue delay) into one inference run.
 */
export class PredictionService {
  private readonly market: MarketDataProvider;
  private readonly registry: ModelRegistry;
  private readonly caches: PredictionCaches;
  private readonly logger: Logger;
  private readonly sink: PredictionSink;
  private readonly onStaleBars: (symbols: readonly string[]) => void;
  /** Symbols last served stale: told to onStaleBars once when they become so, not on every request. */
  readonly #servedStale = new Set<string>();
  readonly maxSymbolsPerRequest: number;
  /**
   * Records already made, by the bars list they were made from and their strategy: a prediction is a
   * pure function of the model version and the bars (features, probability, interval, signal), and the
   * market cache hands every request the same list object for as long as it holds it (the in-process
   * tier keeps values; a stale list is a distinct object, see isStaleBars). So while a symbol's bars are
   * cached, every request reuses one record per model version instead of looking its features and
   * probability up again, rebuilding the record and re-checking every number in it (docs/decisions/
   * compiled-execution.md measured that as the largest share of a warm request after execution). Gone
   * with the list. Not used while a shadow version is set: its scoring stays once per request, as before.
   */
  readonly #madeFrom = new WeakMap<readonly Bar[], Map<string, { model: ModelVersionEntry; record: PredictionRecord }>>();

  constructor(options: PredictionServiceOptions) {
    ({ market: this.market, registry: this.registry, caches: this.caches, logger: this.logger } = options);
    this.maxSymbolsPerRequest = options.maxSymbolsPerRequest;
    this.sink = options.sink ?? { served: () => undefined, shadow: () => undefined };
    this.onStaleBars = options.onStaleBars ?? (() => undefined);
  }

  /**
   * `volatile` is told when the request's answer depends on something no event announces: bars served
   * stale while the market is failing (they are replaced by fresh ones when it recovers, which changes
   * the answer). The response cache keeps no answer so marked.
   */
  createLoaders(options: { volatile?: (reason: string) => void } = {}): PredictionLoaders {
    const bars = new DataLoader<string, Bar[] | undefined>((symbols) => this.loadBars(symbols, { volatile: options.volatile }), {
      maxBatchSize: 5_000,
    });
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
   * one scoring call per model version for all keys, and every prediction goes to the sink (history)
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
   * the sink (history) like every prediction. Stale bars (the provider failing) are not caught up.
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
  private async loadBars(
    symbols: readonly string[],
    options: { fresh?: boolean; volatile?: ((reason: string) => void) | undefined } = {},
  ): Promise<Array<Bar[] | undefined | Error>> {
    // Taken before anything is read: bars fetched before an invalidation must not refill the tier after it.
    const invalidations = this.caches.market.invalidations();
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
      for (const [symbol] of fresh) this.#servedStale.delete(symbol);
      if (failure || fresh.length < fetched.size) {
        options.volatile?.('stale market data');
        const served = new Set(fresh.map(([symbol]) => symbol));
        // Without a failure, a symbol missing from the answer is unknown, not stale.
        const stale = missing.filter((symbol) => !served.has(symbol) && (failure !== undefined || fetched.has(symbol)));
        const newlyStale = stale.filter((symbol) => !this.#servedStale.has(symbol));
        for (const symbol of newlyStale) this.#servedStale.add(symbol);
        if (newlyStale.length) this.onStaleBars(newlyStale);
      }
      await this.caches.market.setMany(
        fresh.map(([symbol, list]) => ({ key: `${this.market.name}:${symbol}`, value: list })),
        { unlessInvalidatedSince: invalidations },
      );
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

    // Records made earlier from these same bars lists by the same versions (#madeFrom): served again,
    // and given to the sink again (which drops what it has already taken); the rest are made below.
    const reused: PredictionRecord[] = [];
    const pending: number[] = [];
    keys.forEach((key, i) => {
      const record = this.#madeEarlier(key.strategy, barsBySymbol.get(key.symbol), servingOf.get(key.strategy));
      if (record) reused.push((results[i] = record));
      else pending.push(i);
    });
    if (reused.length > 0) this.sink.served(reused);
    if (pending.length === 0) return results;

    // Features: once per (symbol, last bar), whatever the number of strategies asking.
    const featureKeys = new Map<string, string>(); // symbol → cache key
    for (const symbol of new Set(pending.map((i) => keys[i]!.symbol))) {
      const list = barsBySymbol.get(symbol);
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
    for (const index of pending) {
      const { strategy } = keys[index]!;
      const indexes = byStrategy.get(strategy);
      if (indexes) indexes.push(index);
      else byStrategy.set(strategy, [index]);
    }
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
          const record = recordOf(model, symbol, barsBySymbol.get(symbol) as Bar[], features.get(symbol)!, probabilities[n]!);
          const problem = invalidPrediction(record);
          if (problem)
            results[i] = modelOutputInvalid(
              `prediction (${model.manifest.strategy}@${model.manifest.version})`,
              symbol,
              problem,
              this.logger,
            );
          else {
            served.push((results[i] = record));
            if (!serving.shadow) this.#remember(barsBySymbol.get(symbol) as Bar[], strategy, model, record);
          }
        });
        this.sink.served(served);
      }),
    );
    return results;
  }

  /** The record made earlier from `list` for `strategy` by the version serving it now, if any (#madeFrom). */
  #madeEarlier(strategy: string, list: Bar[] | undefined | Error, serving: Serving | Error | undefined): PredictionRecord | undefined {
    if (!Array.isArray(list) || serving === undefined || serving instanceof Error || serving.shadow) return undefined;
    const made = this.#madeFrom.get(list)?.get(strategy);
    return made?.model === serving.active ? made.record : undefined;
  }

  #remember(list: readonly Bar[], strategy: string, model: ModelVersionEntry, record: PredictionRecord): void {
    let byStrategy = this.#madeFrom.get(list);
    if (!byStrategy) this.#madeFrom.set(list, (byStrategy = new Map()));
    byStrategy.set(strategy, { model, record });
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
        this.sink.shadow(
          symbols
            .map((symbol, n) => recordOf(shadow, symbol, barsBySymbol.get(symbol) as Bar[], features.get(symbol)!, probabilities[n]!))
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
}
