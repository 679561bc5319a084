import type { Config } from '../../config/index.js';
import type { Cache } from '../../infra/cache/cache.js';
import { CacheTier, type Codec } from '../../infra/cache/tier.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import { barsOf, symbolsOfBars } from '../../infra/response-cache/inputs.js';
import type { ChangeReporter } from '../../infra/response-cache/response-cache.js';
import { dateSafeJson } from '../../shared/date-safe-json.js';
import type { ModelRegistry } from '../models/index.js';
import type { CachedFeatures, PredictionSink } from './prediction.record.js';
import { PointInTimePredictions, type PointInTimeOptions } from './predictions.as-of.js';
import { PredictionService } from './predictions.service.js';

export interface PredictionsModuleDeps {
  readonly config: Pick<Config, 'cacheTtlMs' | 'predictions'>;
  /** Bars to predict from (coalesced, behind the breaker). */
  readonly market: MarketDataProvider;
  /** Past bars for point-in-time answers: straight from the store (no cache, no breaker's stale answers). */
  readonly pastBars: MarketDataProvider;
  /** The version recorded as active at a past time (ModelsModule.recordedActiveAt). */
  readonly recordedActiveAt: PointInTimeOptions['recordedActiveAt'];
  readonly registry: ModelRegistry;
  readonly cache: Cache;
  /** Where every served and shadow prediction is recorded (history). */
  readonly sink: PredictionSink;
  readonly metrics: Pick<Metrics, 'cacheRequestsTotal'>;
  readonly logger: Logger;
  /**
   * With the response cache on: where changes of bars are announced. The market tier then keeps its
   * bars in this process and drops a symbol's the moment its bars change (here or on another instance),
   * so an answer recomputed after a new bar never reads the bars before it from this tier.
   */
  readonly changes?: Pick<ChangeReporter, 'onChange' | 'changed'> | undefined;
}

export interface PredictionsModule {
  readonly service: PredictionService;
  /** `prediction(s)` with `asOf` or `version`: what a version said as of a past bar; never recorded. */
  readonly pointInTime: PointInTimePredictions;
}

/** Bars become features become one ONNX run per model version; three cache tiers in front of each step. */
export function createPredictionsModule({
  config,
  market,
  pastBars,
  recordedActiveAt,
  registry,
  cache,
  sink,
  metrics,
  logger,
  changes,
}: PredictionsModuleDeps): PredictionsModule {
  const count = (tier: string, result: 'hit' | 'miss', n: number) => metrics.cacheRequestsTotal.inc({ tier, result }, n);
  const marketTier = new CacheTier<Bar[]>(cache, 'market', config.cacheTtlMs.market, count, barsCodec, undefined, {
    local: changes !== undefined,
  });
  changes?.onChange((change) => {
    const symbols = 'all' in change ? 'all' : symbolsOfBars(change.inputs);
    if (symbols === 'all') marketTier.invalidateAll();
    else marketTier.invalidate(symbols.map((symbol) => `${market.name}:${symbol}`));
  });
  const service = new PredictionService({
    market,
    registry,
    caches: {
      market: marketTier,
      features: new CacheTier<CachedFeatures>(cache, 'features', config.cacheTtlMs.features, count),
      predictions: new CacheTier<number>(cache, 'predictions', config.cacheTtlMs.predictions, count),
    },
    maxSymbolsPerRequest: config.predictions.maxSymbolsPerRequest,
    logger: logger.child({ component: 'predictions' }),
    sink,
    // Answers stored before the market failed say `stale: false`; from now on these symbols' say true.
    onStaleBars: changes && ((symbols) => changes.changed(symbols.map(barsOf))),
  });
  const pointInTime = new PointInTimePredictions({
    market: pastBars,
    registry,
    logger: logger.child({ component: 'predictions.as-of' }),
    recordedActiveAt,
  });
  return { service, pointInTime };
}

/** Bars carry Dates, which must survive a trip through Redis. */
const barsCodec: Codec<Bar[]> = { encode: (bars) => dateSafeJson.stringify(bars), decode: (text) => dateSafeJson.parse(text) as Bar[] };
