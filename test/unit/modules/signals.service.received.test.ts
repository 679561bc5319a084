import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLocalInterest } from '../../../src/infra/coordination/interest.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createMemoryEventBus } from '../../../src/infra/pubsub/pubsub.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { SignalsService, signalsBus, type WirePrediction } from '../../../src/modules/signals/index.js';
import { projectRoot } from '../../helpers/process.js';

/**
 * What this instance's subscribers received per (strategy, symbol): where a monitor running alone
 * on this instance continues from. Only while the symbol has subscribers here, and only what reached
 * them (an event for a model version this instance does not know does not).
 */
const STRATEGY = 'direction-1d';
const logger = createLogger({ level: 'silent', format: 'json' });

describe('SignalsService.lastReceived', () => {
  let registry: ModelRegistry;
  before(async () => {
    registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 8, maxQueueDelayMs: 0 },
      logger,
    });
  });
  after(() => registry.close());

  test('follows the newest asOf delivered to a symbol with subscribers, and forgets it when the last one leaves', async () => {
    const bus = signalsBus(createMemoryEventBus({ keyPrefix: 't:' }));
    const service = new SignalsService({
      bus,
      registry,
      predictions: { activeModel: (strategy) => registry.active(strategy)!, maxSymbolsPerRequest: 10 },
      repository: { recordedSince: async () => [] },
      market: { name: 'test', listSymbols: async () => ['AAA', 'BBB'], fetchBars: async () => new Map() },
      interest: createLocalInterest(),
      logger,
      maxReplay: 10,
    });
    service.listen([STRATEGY]);
    const version = registry.active(STRATEGY)!.manifest.version;
    const wire = (symbol: string, day: number, modelVersion = version) =>
      ({ symbol, asOf: new Date(Date.UTC(2024, 0, day)), modelVersion, confidence: 0.6 }) as unknown as WirePrediction;
    const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

    const stream = await service.subscribe({ symbols: ['AAA'] });
    bus.publish({ strategy: STRATEGY, predictions: [wire('AAA', 2), wire('BBB', 2)] });
    await settle();
    assert.equal(service.lastReceived(STRATEGY, 'AAA'), Date.UTC(2024, 0, 2));
    assert.equal(service.lastReceived(STRATEGY, 'BBB'), undefined, 'nobody here subscribes to BBB');
    bus.publish({ strategy: STRATEGY, predictions: [wire('AAA', 3, 'v-unknown')] });
    await settle();
    assert.equal(service.lastReceived(STRATEGY, 'AAA'), Date.UTC(2024, 0, 2), 'an event this instance cannot deliver does not count');
    bus.publish({ strategy: STRATEGY, predictions: [wire('AAA', 4)] });
    bus.publish({ strategy: STRATEGY, predictions: [wire('AAA', 3)] });
    await settle();
    assert.equal(service.lastReceived(STRATEGY, 'AAA'), Date.UTC(2024, 0, 4), 'never moves back');
    await stream.return?.();
    assert.equal(service.lastReceived(STRATEGY, 'AAA'), undefined);
    await service.stop();
  });
});
