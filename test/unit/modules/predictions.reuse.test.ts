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
 * While a symbol's bars stay in the market cache, the service serves the record it made from them
 * (predictions.service.ts #madeFrom) rather than making it again: the same object, given to the sink
 * every time; a new one once the bars or the serving version change; and never while a shadow is set.
 */
describe('PredictionService reuses a record while its bars stay cached', () => {
  let fixture: ModelsFixture;
  let registry: ModelRegistry;
  const synthetic = createSyntheticMarket({ symbols: ['AAA', 'BBB'], seed: 5, historyBars: 150, startTime: new Date('2024-01-01') });
  let fetches = 0;
  const provider: MarketDataProvider = {
    name: 'counted',
    listSymbols: () => synthetic.listSymbols(),
    fetchBars: async (symbols, options) => {
      fetches++;
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

  /** A service whose market tier keeps bars for `marketTtlMs`; features and probabilities are not cached. */
  function service(marketTtlMs: number) {
    const cache = createMemoryCache();
    const none = () => undefined;
    const served: PredictionRecord[] = [];
    const shadowed: PredictionRecord[] = [];
    const predictions = new PredictionService({
      market: provider,
      registry,
      caches: {
        market: new CacheTier<Bar[]>(cache, 'market', marketTtlMs, none),
        features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
        predictions: new CacheTier<number>(cache, 'predictions', 0, none),
      },
      maxSymbolsPerRequest: 200,
      logger: createLogger({ level: 'silent', format: 'json' }),
      sink: { served: (records) => served.push(...records), shadow: (records) => shadowed.push(...records) },
    });
    const request = async () => (await predictions.createLoaders().prediction.loadMany(keys)) as PredictionRecord[];
    return { request, served, shadowed };
  }
  const keys = ['AAA', 'BBB'].map((symbol) => ({ strategy: S, symbol }));
  const v = (version: string) => registry.find(S, version)!;
  /** A record's content, without object identity. */
  const content = (r: PredictionRecord) => JSON.stringify({ ...r, model: r.model.manifest.version });

  test('the same bars list and version: the same record, served to the sink again', async () => {
    registry.setServing(S, { active: v('v1') });
    const { request, served } = service(60_000);
    fetches = 0;
    const first = await request();
    const second = await request();
    assert.equal(fetches, 1, 'the second request found the bars cached');
    assert.ok(
      first.every((r, i) => r === second[i]),
      'the records are the same objects',
    );
    assert.deepEqual(served, [...first, ...second], 'every served record reaches the sink, reused or not');
  });

  test('bars fetched again (the market cache expired): a new record, equal in content', async () => {
    registry.setServing(S, { active: v('v1') });
    const { request } = service(30);
    fetches = 0;
    const first = await request();
    await new Promise((resolve) => setTimeout(resolve, 60));
    const second = await request();
    assert.equal(fetches, 2);
    assert.ok(first.every((r, i) => r !== second[i]));
    assert.deepEqual(second.map(content), first.map(content));
  });

  test('another version activated while the bars stay cached: that version’s record', async () => {
    registry.setServing(S, { active: v('v1') });
    const { request } = service(60_000);
    const before = await request();
    registry.setServing(S, { active: v('v2') });
    const after = await request();
    assert.deepEqual(
      after.map((r) => r.model.manifest.version),
      ['v2', 'v2'],
    );
    assert.ok(after.every((r, i) => r.probability !== before[i]!.probability));
    registry.setServing(S, { active: v('v1') });
    const back = await request();
    assert.deepEqual(back.map(content), before.map(content));
  });

  test('with a shadow version set, every request makes its records and scores the shadow again', async () => {
    registry.setServing(S, { active: v('v1'), shadow: v('v2') });
    try {
      const { request, shadowed } = service(60_000);
      const first = await request();
      const second = await request();
      assert.ok(first.every((r, i) => r !== second[i]));
      await eventually('both requests’ shadow records', () => (shadowed.length === 4 ? true : undefined));
    } finally {
      registry.setServing(S, { active: v('v1') });
    }
  });
});
