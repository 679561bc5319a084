import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CacheTier } from '../../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../../src/infra/cache/memory.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar, MarketDataProvider } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { PredictionService, type CachedFeatures, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { eventually, modelsFixture, type ModelsFixture } from '../../helpers/models.js';

const S = 'direction-1d';

/**
 * How the prediction service uses what the registry says serves a strategy: one read per batch (a switch
 * during the batch does not change it), and a shadow version scored on the same vectors, handed to
 * `onShadow` and never returned, whose failure costs nothing but its own records.
 */
describe('PredictionService with a shadow version and a switch during a batch', () => {
  let fixture: ModelsFixture;
  let registry: ModelRegistry;
  const logged: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'warn',
    format: 'json',
    destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
  });
  const synthetic = createSyntheticMarket({ symbols: ['AAA', 'BBB', 'CCC'], seed: 5, historyBars: 150, startTime: new Date('2024-01-01') });
  /** While set, market fetches wait for it: a batch is held "in flight". */
  let gate: Promise<void> | undefined;
  const provider: MarketDataProvider = {
    name: 'gated',
    listSymbols: () => synthetic.listSymbols(),
    fetchBars: async (symbols, options) => {
      await gate;
      return synthetic.fetchBars(symbols, options);
    },
  };

  before(async () => {
    fixture = await modelsFixture([S]);
    await fixture.addVersion(S, 'v2', { createdAt: '2001-01-01T00:00:00.000Z', calibrationShift: 0.7 });
    registry = await ModelRegistry.load({
      directory: fixture.dir,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
  });
  after(async () => {
    await registry.close();
    fixture.remove();
  });

  function service() {
    const cache = createMemoryCache();
    const none = () => undefined;
    const served: PredictionRecord[] = [];
    const shadowed: PredictionRecord[] = [];
    const predictions = new PredictionService({
      market: provider,
      registry,
      caches: {
        market: new CacheTier<Bar[]>(cache, 'market', 0, none),
        features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
        predictions: new CacheTier<number>(cache, 'predictions', 0, none),
      },
      maxSymbolsPerRequest: 200,
      logger,
      sink: { served: (records) => served.push(...records), shadow: (records) => shadowed.push(...records) },
    });
    return { predictions, served, shadowed };
  }
  const keys = ['AAA', 'BBB', 'CCC'].map((symbol) => ({ strategy: S, symbol }));
  const v = (version: string) => registry.find(S, version)!;

  test('shadow: same bars and feature vectors, its own version and probabilities, recorded but never returned', async () => {
    registry.setServing(S, { active: v('v1'), shadow: v('v2') });
    const { predictions, served, shadowed } = service();
    const results = (await predictions.createLoaders().prediction.loadMany(keys)) as PredictionRecord[];
    assert.deepEqual(
      results.map((r) => r.model.manifest.version),
      ['v1', 'v1', 'v1'],
    );
    assert.deepEqual(served, results);
    // The shadow run is not awaited by the batch: its records arrive when it finishes.
    await eventually('the shadow records', () => (shadowed.length === 3 ? true : undefined));
    assert.deepEqual(
      shadowed.map((r) => [r.symbol, r.model.manifest.version]),
      [
        ['AAA', 'v2'],
        ['BBB', 'v2'],
        ['CCC', 'v2'],
      ],
    );
    for (const shadow of shadowed) {
      const active = results.find((r) => r.symbol === shadow.symbol)!;
      assert.equal(shadow.featuresHash, active.featuresHash);
      assert.equal(shadow.asOf.getTime(), active.asOf.getTime());
      assert.ok(shadow.probability > active.probability, 'v2 is v1 with a higher Platt intercept');
    }
  });

  test('a failing shadow costs only its own records: responses are served, one warning is logged', async () => {
    registry.setServing(S, { active: v('v1'), shadow: v('v2') });
    const shadowBatcher = v('v2').batcher;
    const original = shadowBatcher.score.bind(shadowBatcher);
    shadowBatcher.score = () => Promise.reject(new Error('onnxruntime: shadow exploded'));
    logged.length = 0;
    try {
      const { predictions, shadowed } = service();
      const results = await predictions.createLoaders().prediction.loadMany(keys);
      assert.ok(results.every((r) => !(r instanceof Error) && r.model.manifest.version === 'v1'));
      await eventually('the shadow failure to be logged', () => (logged.length > 0 ? true : undefined));
      assert.deepEqual(shadowed, []);
      assert.equal(logged.length, 1);
      assert.match(String(logged[0]!.msg), /shadow inference \(direction-1d@v2\) failed/);
    } finally {
      shadowBatcher.score = original;
    }
  });

  test('a batch in flight when the strategy switches finishes on the version it started with', async () => {
    registry.setServing(S, { active: v('v1') });
    const { predictions } = service();
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const pending = predictions.createLoaders().prediction.loadMany(keys);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the batch has started and waits for bars
    registry.setServing(S, { active: v('v2') });
    open();
    gate = undefined;
    const results = (await pending) as PredictionRecord[];
    assert.deepEqual(
      results.map((r) => r.model.manifest.version),
      ['v1', 'v1', 'v1'],
    );
    const next = (await predictions.createLoaders().prediction.loadMany(keys)) as PredictionRecord[];
    assert.deepEqual(
      next.map((r) => r.model.manifest.version),
      ['v2', 'v2', 'v2'],
      'the next batch uses the new version',
    );
  });
});
