import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CacheTier } from '../../../src/infra/cache/tier.js';
import { createMemoryCache } from '../../../src/infra/cache/memory.js';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { ExplanationService } from '../../../src/modules/explanations/index.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { PredictionService, type CachedFeatures, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { formatGraphQLError } from '../../../src/server/errors.js';
import { projectRoot } from '../../helpers/process.js';

/**
 * Whatever a loaded model answers (it passed its smoke inference, yet NaN or Infinity for some inputs),
 * the item is a coded MODEL_OUTPUT_INVALID: never served, cached or recorded, and its neighbours in the
 * batch are unaffected. The model's batcher is replaced to answer what the test needs.
 */
describe('non-finite model output', () => {
  let registry: ModelRegistry;
  const logged: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'warn',
    format: 'json',
    destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
  });
  const market = createSyntheticMarket({ symbols: ['AAA', 'BBB', 'CCC'], seed: 5, historyBars: 150, startTime: new Date('2024-01-01') });
  const code = (value: unknown) => (value as { extensions?: { code?: string } }).extensions?.code;

  before(async () => {
    registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
  });
  after(() => registry.close());

  function service(served: PredictionRecord[][]) {
    const cache = createMemoryCache();
    const none = () => undefined;
    const caches = {
      market: new CacheTier<Bar[]>(cache, 'market', 0, none),
      features: new CacheTier<CachedFeatures>(cache, 'features', 0, none),
      predictions: new CacheTier<number>(cache, 'predictions', 60_000, none),
    };
    return {
      caches,
      predictions: new PredictionService({
        market,
        registry,
        caches,
        maxSymbolsPerRequest: 200,
        logger,
        sink: { served: (records) => served.push([...records]), shadow: () => undefined },
      }),
    };
  }

  test('NaN from the model for one symbol: that symbol only, coded, not recorded or cached; a saturated Infinity is a probability of 1', async () => {
    const model = registry.active('direction-1d')!;
    const original = model.batcher.score.bind(model.batcher);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      // Row 1 of the run (BBB) gets the bad raw score; the calibration maps it to NaN or 1.
      model.batcher.score = async (input, rows) => {
        const out = Float32Array.from(await original(input, rows));
        out[1] = bad;
        return out;
      };
      const served: PredictionRecord[][] = [];
      const { predictions, caches } = service(served);
      logged.length = 0;
      try {
        const results = await predictions
          .createLoaders()
          .prediction.loadMany(['AAA', 'BBB', 'CCC'].map((symbol) => ({ strategy: 'direction-1d', symbol })));
        if (Number.isNaN(bad)) {
          assert.equal(code(results[1]), 'MODEL_OUTPUT_INVALID');
          assert.equal(
            (results[1] as Error).message,
            `the prediction (direction-1d@v1) for "BBB" cannot be served: the model's probability is NaN`,
          );
          assert.deepEqual(
            served.flat().map((r) => r.symbol),
            ['AAA', 'CCC'],
          );
          const cached = await caches.predictions.getMany([`direction-1d:v1:${(results[0] as PredictionRecord).featuresHash}`]);
          assert.equal(typeof cached[0], 'number', 'the good probability is cached');
          assert.equal(logged.filter((l) => /cannot be served/.test(String(l.msg))).length, 1);
          assert.equal(logged[0]!.level, 40, 'warn, not error');
          assert.equal(logged[0]!.err, undefined, 'no stack: nothing threw');
          // In production the code and message reach the client as they are (not masked as internal).
          const formatted = formatGraphQLError(
            { message: (results[1] as Error).message, extensions: { code: 'MODEL_OUTPUT_INVALID', symbol: 'BBB' } },
            true,
          );
          assert.deepEqual(formatted.extensions, { code: 'MODEL_OUTPUT_INVALID', symbol: 'BBB' });
          assert.match(formatted.message, /"BBB" cannot be served/);
        } else {
          // A saturated raw score is a legitimate probability of 1 after calibration: served.
          assert.ok(!(results[1] instanceof Error));
          assert.ok((results[1] as PredictionRecord).probability <= 1);
        }
        for (const i of [0, 2]) assert.ok(!(results[i] instanceof Error), String(results[i]));
      } finally {
        model.batcher.score = original;
      }
    }
  });

  test('an explanation whose model answers NaN for some hybrid input is MODEL_OUTPUT_INVALID; the others are explained', async () => {
    const served: PredictionRecord[][] = [];
    const { predictions } = service(served);
    const records = (await predictions
      .createLoaders()
      .prediction.loadMany(['AAA', 'BBB'].map((symbol) => ({ strategy: 'direction-1d', symbol })))) as PredictionRecord[];
    const explanations = new ExplanationService({
      outcomes: {
        evidenceInBands: async (bands) =>
          bands.map(() => ({ samples: 0, correct: 0, days: 0, sumRows2: 0, sumCorrect2: 0, sumCorrectRows: 0 })),
      },
      logger,
    });
    const model = registry.active('direction-1d')!;
    const original = model.batcher.scoreAsOneRun.bind(model.batcher);
    model.batcher.scoreAsOneRun = async (input, rows) => {
      const out = Float32Array.from(await original(input, rows));
      out[out.length - 1] = Number.NaN; // a coalition row of the last record (BBB)
      return out;
    };
    try {
      const [aaa, bbb] = await explanations.createLoaders().explanation.loadMany(records);
      assert.ok(!(aaa instanceof Error), String(aaa));
      assert.equal(code(bbb), 'MODEL_OUTPUT_INVALID');
      assert.match(
        (bbb as Error).message,
        /^the explanation \(direction-1d@v1\) for "BBB" cannot be served: the contribution of input #\d+ is NaN$/,
      );
      model.batcher.scoreAsOneRun = async (input, rows) => {
        const out = Float32Array.from(await original(input, rows));
        out[0] = Number.NaN; // the baseline row, shared by every record
        return out;
      };
      const both = await explanations.createLoaders().explanation.loadMany(records);
      for (const e of both)
        assert.match(String((e as Error).message), /cannot be served: the model's probability is NaN at the baseline input$/);
    } finally {
      model.batcher.scoreAsOneRun = original;
    }
  });
});
