import DataLoader from 'dataloader';
import type { Logger } from '../../infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import { applyPlatt } from '../../domain/calibration.js';
import { FEATURE_WINDOW, computeFeatures } from '../../domain/features.js';
import { findStrategy } from '../../domain/strategies.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import type { ModelRegistry, ModelVersionEntry } from '../models/index.js';
import { invalidFeatures, modelOutputInvalid } from './output-guard.js';
import { invalidPrediction, recordOf, type CachedFeatures, type PredictionRecord, type VersionChoice } from './prediction.record.js';
import { unavailableBecause } from './unavailable.js';

/**
 * Point-in-time predictions: what a model version said as of a past bar, from stored bars only.
 *
 * Features come from the {@link FEATURE_WINDOW} bars at or before `asOf` (a daily bar is stamped
 * 00:00 UTC of its trading date, so `asOf: 2020-03-16` includes that day's close and nothing after
 * it). A non-trading `asOf` answers as of the last bar before it: the prediction's `asOf` names that
 * bar, `pointInTime.requested` what was asked.
 *
 * Which version: the `version` asked for; else the version the serving record (the audit log of
 * activations, models.repository.ts `activeAt`) shows as active at `asOf`; else, since nothing was
 * recorded that early (any market date before this deployment first ran), the version active now.
 * `pointInTime.versionChosenBy` says which of the three it was, so an answer never pretends the
 * current model was the one serving in 2020.
 *
 * These answers are not live predictions: nothing here is recorded in history or published.
 */
export interface PointInTimeKey {
  readonly strategy: string;
  readonly symbol: string;
  /** Default: the newest stored bar. */
  readonly asOf?: Date | undefined;
  /** Default: chosen as described above. */
  readonly version?: string | undefined;
}

export type PointInTimeLoader = DataLoader<PointInTimeKey, PredictionRecord, string>;

export interface PointInTimeOptions {
  readonly market: MarketDataProvider;
  readonly registry: ModelRegistry;
  readonly logger: Logger;
  /** The version recorded as active for `strategy` at `time`, if any (ModelServingRepository.activeAt). */
  readonly recordedActiveAt?: ((strategy: string, time: Date) => Promise<string | undefined>) | undefined;
  /** For tests; default: the clock. */
  readonly now?: () => Date;
}

export class PointInTimePredictions {
  readonly #options: PointInTimeOptions;

  constructor(options: PointInTimeOptions) {
    this.#options = options;
  }

  /**
   * A per-request loader: keys with the same (version, asOf) share one market fetch and ONE
   * inference run, however many symbols they name.
   */
  createLoader(): PointInTimeLoader {
    return new DataLoader<PointInTimeKey, PredictionRecord, string>((keys) => this.predict(keys), {
      cacheKeyFn: (key) => [key.strategy, key.symbol, key.asOf?.getTime() ?? '', key.version ?? ''].join('\u0000'),
      maxBatchSize: 5_000,
    });
  }

  /** The model version a point-in-time question about `strategy` gets, and why; a coded error for a bad name. */
  async chooseVersion(strategy: string, asOf: Date | undefined, version: string | undefined): Promise<ChosenVersion> {
    const { registry } = this.#options;
    if (!findStrategy(strategy) && registry.versionsOf(strategy).length === 0) {
      throw codedError(
        ErrorCode.UNKNOWN_STRATEGY,
        `Unknown strategy "${strategy}"; known: ${registry.strategies().join(', ') || '(none loaded)'}`,
      );
    }
    if (version !== undefined) {
      const entry = registry.find(strategy, version);
      if (!entry) {
        const known = registry.versionsOf(strategy).map((v) => v.manifest.version);
        throw badUserInput(`Unknown version "${version}" of ${strategy}; loaded: ${known.join(', ') || '(none)'}`, {
          strategy,
          version,
          known,
        });
      }
      return { entry, chosenBy: 'REQUESTED' };
    }
    const current = registry.active(strategy);
    if (!current) throw codedError(ErrorCode.UNAVAILABLE, `No model version of "${strategy}" is loaded on this instance`);
    if (asOf && this.#options.recordedActiveAt) {
      const recorded = await this.#options.recordedActiveAt(strategy, asOf);
      const entry = recorded === undefined ? undefined : registry.find(strategy, recorded);
      if (entry) return { entry, chosenBy: 'RECORDED_ACTIVE' };
    }
    return { entry: current, chosenBy: 'CURRENT_ACTIVE' };
  }

  /** Refuses an `asOf` no stored bar can answer for before anything is fetched. */
  checkAsOf(asOf: Date | undefined): void {
    if (asOf === undefined) return;
    if (Number.isNaN(asOf.getTime())) throw badUserInput('asOf is not a valid instant');
    const now = this.#options.now?.() ?? new Date();
    if (asOf.getTime() > now.getTime()) {
      throw badUserInput(`asOf ${asOf.toISOString()} is in the future; point-in-time predictions answer for past bars`, {
        asOf: asOf.toISOString(),
      });
    }
  }

  private async predict(keys: readonly PointInTimeKey[]): Promise<Array<PredictionRecord | Error>> {
    const results: Array<PredictionRecord | Error> = new Array(keys.length);
    // Group by asOf (one fetch each), then by chosen version (one run each).
    const byAsOf = new Map<number | undefined, number[]>();
    keys.forEach((key, i) => {
      const at = key.asOf?.getTime();
      const list = byAsOf.get(at);
      if (list) list.push(i);
      else byAsOf.set(at, [i]);
    });
    await Promise.all(
      [...byAsOf].map(async ([at, indexes]) => {
        const asOf = at === undefined ? undefined : new Date(at);
        try {
          await this.predictAt(asOf, indexes, keys, results);
        } catch (error) {
          for (const i of indexes) results[i] ??= error instanceof Error ? error : new Error(String(error));
        }
      }),
    );
    return results;
  }

  private async predictAt(
    asOf: Date | undefined,
    indexes: readonly number[],
    keys: readonly PointInTimeKey[],
    results: Array<PredictionRecord | Error>,
  ): Promise<void> {
    const { market, logger } = this.#options;
    this.checkAsOf(asOf);
    const groups = new Map<ModelVersionEntry, { chosenBy: VersionChoice; indexes: number[] }>();
    for (const i of indexes) {
      const { strategy, version } = keys[i]!;
      try {
        const { entry, chosenBy } = await this.chooseVersion(strategy, asOf, version);
        const group = groups.get(entry);
        if (group) group.indexes.push(i);
        else groups.set(entry, { chosenBy, indexes: [i] });
      } catch (error) {
        results[i] = error as Error;
      }
    }
    if (groups.size === 0) return;
    const symbols = [...new Set([...groups.values()].flatMap((g) => g.indexes.map((i) => keys[i]!.symbol)))];
    let bars: Map<string, Bar[]>;
    try {
      bars = await market.fetchBars(symbols, { lookback: FEATURE_WINDOW, until: asOf });
    } catch (error) {
      const failure = unavailableBecause('market data', error, logger);
      for (const group of groups.values()) for (const i of group.indexes) results[i] = failure;
      return;
    }
    const known = symbols.some((s) => (bars.get(s)?.length ?? 0) === 0) ? new Set(await market.listSymbols()) : undefined;
    const features = new Map<string, CachedFeatures | Error>();
    for (const symbol of symbols) features.set(symbol, this.featuresOf(symbol, bars.get(symbol) ?? [], asOf, known));

    for (const [model, group] of groups) {
      const ready: number[] = [];
      for (const i of group.indexes) {
        const vector = features.get(keys[i]!.symbol)!;
        if (vector instanceof Error) results[i] = vector;
        else ready.push(i);
      }
      if (ready.length === 0) continue;
      let probabilities: number[];
      try {
        probabilities = await scoreOneRun(
          model,
          ready.map((i) => (features.get(keys[i]!.symbol) as CachedFeatures).values),
        );
      } catch (error) {
        const failure = unavailableBecause(`inference (${model.manifest.strategy}@${model.manifest.version})`, error, logger);
        for (const i of ready) results[i] = failure;
        continue;
      }
      ready.forEach((i, n) => {
        const { symbol, version } = keys[i]!;
        const record: PredictionRecord = {
          ...recordOf(model, symbol, bars.get(symbol)!, features.get(symbol) as CachedFeatures, probabilities[n]!),
          pointInTime: {
            requested: asOf ?? bars.get(symbol)!.at(-1)!.time,
            versionChosenBy: group.chosenBy,
            askedAsOf: asOf,
            askedVersion: version,
          },
        };
        const problem = invalidPrediction(record);
        results[i] = problem
          ? modelOutputInvalid(`prediction (${model.manifest.strategy}@${model.manifest.version})`, symbol, problem, logger)
          : record;
      });
    }
  }

  private featuresOf(
    symbol: string,
    list: readonly Bar[],
    asOf: Date | undefined,
    known: ReadonlySet<string> | undefined,
  ): CachedFeatures | Error {
    if (list.length === 0) {
      if (known && !known.has(symbol))
        return codedError(ErrorCode.UNKNOWN_SYMBOL, `Unknown symbol "${symbol}": no market data for it`, { symbol });
      return badUserInput(`asOf ${asOf?.toISOString() ?? '(latest)'} is before the first stored bar of ${symbol}`, { symbol });
    }
    if (list.length < FEATURE_WINDOW) {
      return badUserInput(
        `asOf ${asOf?.toISOString() ?? '(latest)'} is too early for ${symbol}: ${list.length} stored bars at or before it (from ` +
          `${list[0]!.time.toISOString().slice(0, 10)}); predictions need ${FEATURE_WINDOW}`,
        { symbol, bars: list.length, needed: FEATURE_WINDOW },
      );
    }
    const vector = computeFeatures(list);
    const values = Array.from(vector.values);
    const problem = invalidFeatures(values);
    if (problem) return modelOutputInvalid('prediction', symbol, problem, this.#options.logger);
    return { values, hash: vector.hash };
  }
}

export interface ChosenVersion {
  readonly entry: ModelVersionEntry;
  readonly chosenBy: VersionChoice;
}

/**
 * Calibrated probabilities of `vectors` (FEATURE_NAMES order) in ONE inference run, however many there
 * are: the caller bounds the count. Bypasses the prediction cache (a past bar is asked about rarely).
 */
export async function scoreOneRun(model: ModelVersionEntry, vectors: ReadonlyArray<ArrayLike<number>>): Promise<number[]> {
  const width = model.featureOrder.length;
  const input = new Float32Array(vectors.length * width);
  vectors.forEach((values, row) => model.featureOrder.forEach((feature, column) => (input[row * width + column] = values[feature]!)));
  const raw = await model.batcher.scoreAsOneRun(input, vectors.length);
  return Array.from(raw, (p) => applyPlatt(model.manifest.calibration, p));
}
