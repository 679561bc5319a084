import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { CacheTier } from '../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../src/infra/cache/memory.js';
import { parseBarsCsv } from '../../src/infra/market-data/csv.js';
import { createOnnxEngine } from '../../src/infra/inference/onnx.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../src/infra/market-data/market-data.js';
import { FEATURE_WINDOW, computeFeatures } from '../../src/domain/features.js';
import { manifestSchema, type Manifest } from '../../src/domain/manifest.js';
import { ModelRegistry } from '../../src/modules/models/index.js';
import { PredictionService, priceInterval, type CachedFeatures } from '../../src/modules/predictions/index.js';
import { projectRoot } from '../helpers/process.js';

/**
 * The committed models' 95% price intervals on the held-out period of the real data, recomputed here from
 * the CSVs with this file's own arithmetic (features from the served pipeline; scale, score and
 * grouping written out again), not read back from the manifests: every calendar year within 94–96% and
 * every month at least 90%, March 2020 included. Also: the interval the gateway serves for a held-out
 * bar is the offline one for the same features.
 */
const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');
const HELD_OUT_FROM = Date.parse('2018-01-01T00:00:00Z');
const silent = createLogger({ level: 'silent', format: 'json' });

/**
 * Periods where the 5-day interval falls short, measured and explained in docs/decisions/adaptive-intervals.md:
 * intervals made on 18–21 February 2020, calm days by every estimate from bars ≤ asOf, whose five days
 * then held the crash's first week. The test pins it so that any change to it is seen.
 */
const KNOWN_SHORTFALLS: Record<string, readonly string[]> = { 'direction-1d': [], 'direction-5d': ['2020-02'] };

function loadBars(): Map<string, Bar[]> {
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const bars = new Map<string, Bar[]>();
  for (const file of readdirSync(dailyAdjusted).filter((f) => f.endsWith('.csv'))) {
    const parsed = parseBarsCsv(readFileSync(path.join(dailyAdjusted, file), 'utf8'), { file });
    if (parsed.ok) bars.set(parsed.symbol, parsed.bars);
  }
  return bars;
}

/** The scale as the decision record defines it: Π max(estimate, floor)^weight; vol_5d = vol_ratio_5_20 × vol_20d. */
function scaleOf(manifest: Manifest, f: Float64Array): number {
  const interval = manifest.interval;
  const weights = interval.method === 'split-conformal' ? { vol_20d: 1 } : interval.scale.weights;
  const floor = interval.method === 'split-conformal' ? 1e-6 : interval.scale.floor;
  const estimate = { vol_20d: f[4]!, vol_5d: f[5]! * f[4]!, hl_range: f[12]! };
  let scale = 1;
  for (const [name, w] of Object.entries(weights)) scale *= Math.max(estimate[name as keyof typeof estimate], floor) ** w;
  return scale;
}

/** [q⁻, q⁺] of a level: lowerQuantiles below the centre where the manifest has them, else quantiles both ways. */
function quantilesOf(manifest: Manifest, level: number): [number, number] {
  const interval = manifest.interval;
  const q = interval.quantiles[String(level)]!;
  return [(interval.method === 'split-conformal' ? undefined : interval.lowerQuantiles?.[String(level)]) ?? q, q];
}

const suspect = (b: Bar) => (b.open === b.high && b.high === b.low && b.low === b.close) || b.volume <= 0;

interface HeldOut {
  readonly symbol: string;
  readonly bars: readonly Bar[];
  readonly t: number;
  readonly features: Float64Array;
  readonly forwardReturn: number;
}

describe('committed models: 95% price intervals on the held-out period (real data)', () => {
  let barsBySymbol: Map<string, Bar[]>;
  const manifests = new Map<string, Manifest>();
  before(() => {
    barsBySymbol = loadBars();
    for (const strategy of ['direction-1d', 'direction-5d']) {
      const file = path.join(projectRoot, 'models', strategy, 'v1', 'manifest.json');
      manifests.set(strategy, manifestSchema.parse(JSON.parse(readFileSync(file, 'utf8'))));
    }
  });

  function heldOut(horizon: number): HeldOut[] {
    const rows: HeldOut[] = [];
    for (const [symbol, bars] of barsBySymbol) {
      for (let t = FEATURE_WINDOW - 1; t + horizon < bars.length; t++) {
        if (bars[t]!.time.getTime() < HELD_OUT_FROM || suspect(bars[t]!) || suspect(bars[t + horizon]!)) continue;
        const { values } = computeFeatures(bars.slice(t - FEATURE_WINDOW + 1, t + 1));
        if (!values.every(Number.isFinite)) continue;
        rows.push({ symbol, bars, t, features: values, forwardReturn: Math.log(bars[t + horizon]!.adjClose / bars[t]!.adjClose) });
      }
    }
    return rows;
  }

  for (const strategy of ['direction-1d', 'direction-5d']) {
    test(`${strategy}: coverage by calendar year in [94%, 96%] and by month ≥ 90%, recomputed from the CSVs`, () => {
      const manifest = manifests.get(strategy)!;
      const h = manifest.horizonBars;
      const [qLow, q] = quantilesOf(manifest, 0.95);
      const rows = heldOut(h);
      assert.equal(rows.length, manifest.offlineMetrics.sampleSize);
      const groups = new Map<string, { hit: number; n: number }>();
      for (const row of rows) {
        const unit = scaleOf(manifest, row.features) * Math.sqrt(h);
        const away = row.forwardReturn - manifest.interval.center;
        const inside = -qLow * unit <= away && away <= q * unit;
        const day = row.bars[row.t]!.time.toISOString();
        for (const key of [day.slice(0, 4), day.slice(0, 7)]) {
          const g = groups.get(key) ?? { hit: 0, n: 0 };
          g.hit += inside ? 1 : 0;
          g.n += 1;
          groups.set(key, g);
        }
      }
      const coverage = new Map([...groups].map(([k, g]) => [k, g.hit / g.n]));
      const failing = [...coverage]
        .filter(([k, c]) => (k.length === 4 ? c < 0.94 || c > 0.96 : c < 0.9))
        .map(([k]) => k)
        .sort();
      assert.deepEqual(failing, [...KNOWN_SHORTFALLS[strategy]!].sort(), JSON.stringify(Object.fromEntries(coverage)));
      assert.ok(coverage.get('2020-03')! >= 0.9, `March 2020: ${coverage.get('2020-03')}`);
      // And the manifest says the same.
      for (const c of [...manifest.offlineMetrics.intervalCoverageByYear!, ...manifest.offlineMetrics.intervalCoverageByMonth!]) {
        assert.ok(
          Math.abs(c.coverage - coverage.get(c.period)!) < 1e-12,
          `${c.period}: manifest ${c.coverage}, recomputed ${coverage.get(c.period)}`,
        );
        assert.equal(c.samples, groups.get(c.period)!.n);
      }
    });
  }

  test('the gateway serves, for a held-out bar, the offline interval of the same features (2020-03-16, 10 symbols)', async () => {
    const asOf = new Date('2020-03-16T00:00:00Z');
    const symbols = [...barsBySymbol.keys()].sort().slice(0, 10);
    const market: MarketDataProvider = {
      name: 'csv',
      listSymbols: async () => symbols,
      fetchBars: async (wanted, { lookback, until }) =>
        new Map(
          wanted.map((s) => {
            const upTo = barsBySymbol.get(s)!.filter((b) => b.time <= (until ?? asOf) && b.time <= asOf);
            return [s, upTo.slice(-lookback)];
          }),
        ),
    };
    const registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: silent,
    });
    const cache = createMemoryCache();
    const none = () => undefined;
    const service = new PredictionService({
      market,
      registry,
      caches: {
        market: new CacheTier<Bar[]>(cache, 'market', 0, none),
        features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
        predictions: new CacheTier<number>(cache, 'predictions', 0, none),
      },
      maxSymbolsPerRequest: 200,
      logger: silent,
    });
    for (const strategy of ['direction-1d', 'direction-5d']) {
      const manifest = manifests.get(strategy)!;
      const records = await service.createLoaders().prediction.loadMany(symbols.map((symbol) => ({ strategy, symbol })));
      for (const [i, record] of records.entries()) {
        assert.ok(!(record instanceof Error), String(record));
        assert.equal(record.asOf.toISOString(), asOf.toISOString());
        const bars = barsBySymbol.get(symbols[i]!)!.filter((b) => b.time <= asOf);
        const { values } = computeFeatures(bars.slice(-FEATURE_WINDOW));
        for (const level of [0.8, 0.9, 0.95, 0.99]) {
          const [qLow, qHigh] = quantilesOf(manifest, level);
          const unit = scaleOf(manifest, values) * Math.sqrt(manifest.horizonBars);
          const close = bars.at(-1)!.close;
          const served = priceInterval(record, level);
          assert.ok(
            Math.abs(served.low - close * Math.exp(manifest.interval.center - qLow * unit)) <= 1e-9 * close,
            `${strategy} ${symbols[i]} low`,
          );
          assert.ok(
            Math.abs(served.high - close * Math.exp(manifest.interval.center + qHigh * unit)) <= 1e-9 * close,
            `${strategy} ${symbols[i]} high`,
          );
        }
      }
    }
    await registry.close?.();
  });
});
