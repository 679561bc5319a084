import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CacheTier } from '../../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../../src/infra/cache/memory.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { PredictionService, type CachedFeatures } from '../../../src/modules/predictions/index.js';
import { projectRoot } from '../../helpers/process.js';

/**
 * Failure paths of the prediction service against a market-data provider that fails on command. The
 * claim is how failures reach clients (codes, no internals, one log line), not anything about SQL.
 */
describe('PredictionService when a dependency fails', () => {
  let registry: ModelRegistry;
  const logged: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'warn',
    format: 'json',
    destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
  });
  let failing = false;
  const synthetic = createSyntheticMarket({ symbols: ['AAA', 'BBB'], seed: 3, historyBars: 150, startTime: new Date('2024-01-01') });
  const provider: MarketDataProvider = {
    name: 'flaky',
    listSymbols: () => synthetic.listSymbols(),
    fetchBars: (symbols, options) =>
      failing ? Promise.reject(new Error('connect ECONNREFUSED 10.0.0.9:5432 (secret detail)')) : synthetic.fetchBars(symbols, options),
  };

  before(async () => {
    registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
  });
  after(() => registry.close());

  const service = () => {
    const cache = createMemoryCache();
    const none = () => undefined;
    return new PredictionService({
      market: provider,
      registry,
      caches: {
        market: new CacheTier<Bar[]>(cache, 'market', 0, none),
        features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
        predictions: new CacheTier<number>(cache, 'predictions', 0, none),
      },
      maxSymbolsPerRequest: 200,
      logger,
    });
  };

  test('a failing market-data provider gives UNAVAILABLE for every symbol, without internals, logged once', async () => {
    failing = true;
    logged.length = 0;
    const results = await service()
      .createLoaders()
      .prediction.loadMany([
        { strategy: 'direction-1d', symbol: 'AAA' },
        { strategy: 'direction-1d', symbol: 'BBB' },
      ]);
    for (const result of results) {
      assert.ok(result instanceof Error);
      assert.equal((result as Error & { extensions: { code: string } }).extensions.code, 'UNAVAILABLE');
      assert.doesNotMatch(result.message, /ECONNREFUSED|secret|10\.0\.0\.9/);
    }
    assert.equal(logged.length, 1);
    assert.match(String((logged[0]!.err as { message: string }).message), /ECONNREFUSED/);
  });

  test('the same service recovers as soon as the provider does', async () => {
    failing = false;
    const [result] = await service()
      .createLoaders()
      .prediction.loadMany([{ strategy: 'direction-1d', symbol: 'AAA' }]);
    assert.ok(!(result instanceof Error), String(result));
  });

  test('an inference failure gives UNAVAILABLE too', async () => {
    failing = false;
    const model = registry.active('direction-1d')!;
    const original = model.batcher.score.bind(model.batcher);
    model.batcher.score = () => Promise.reject(new Error('onnxruntime: out of memory'));
    try {
      const [result] = await service()
        .createLoaders()
        .prediction.loadMany([{ strategy: 'direction-1d', symbol: 'BBB' }]);
      assert.ok(result instanceof Error);
      assert.equal((result as Error & { extensions: { code: string } }).extensions.code, 'UNAVAILABLE');
      assert.match(result.message, /inference \(direction-1d@v1\) is unavailable/);
    } finally {
      model.batcher.score = original;
    }
  });
});
