import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { historyOfPredictions, type HistoryRow, type RecordResult } from '../../../src/modules/history/index.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { recordOf, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { computeFeatures, FEATURE_WINDOW } from '../../../src/domain/features.js';
import { modelsFixture } from '../../helpers/models.js';

/**
 * The history sink turns each record it has not yet handed over into a row, and hands each record to the
 * writer until the writer takes it: the prediction service serves the same record object to every warm
 * request (predictions.service.ts #madeFrom), and offering it again would only be dropped as a repeat.
 */
describe('historyOfPredictions offers a record until the writer has taken it', () => {
  async function records(): Promise<PredictionRecord[]> {
    const fixture = await modelsFixture(['direction-1d']);
    const registry = await ModelRegistry.load({
      directory: fixture.dir,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 8, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
    try {
      const market = createSyntheticMarket({ symbols: ['AAA', 'BBB'], seed: 3, historyBars: 150, startTime: new Date('2024-01-01') });
      const bars = await market.fetchBars(['AAA', 'BBB'], { lookback: FEATURE_WINDOW });
      const model = registry.active('direction-1d')!;
      return [...bars].map(([symbol, list]) => {
        const vector = computeFeatures(list);
        return recordOf(model, symbol, list, { values: Array.from(vector.values), hash: vector.hash }, 0.6);
      });
    } finally {
      await registry.close();
      fixture.remove();
    }
  }

  /** The writer as the sink sees it: what it was offered, answering with `result` (accepted unless told otherwise). */
  function writer(result: (rows: readonly HistoryRow[]) => Partial<RecordResult> = () => ({})) {
    const offered: HistoryRow[][] = [];
    return {
      offered,
      record(rows: readonly HistoryRow[]): RecordResult {
        offered.push([...rows]);
        return { accepted: rows.length, duplicates: 0, invalid: 0, refused: 0, ...result(rows) };
      },
    };
  }

  test('a record served again is not offered again once taken; a new record is', async () => {
    const [a, b] = await records();
    const history = writer();
    const sink = historyOfPredictions(history, 'synthetic');
    sink.served([a!]);
    sink.served([a!, b!]);
    sink.served([a!, b!]);
    assert.deepEqual(
      history.offered.map((rows) => rows.map((r) => r.symbol)),
      [['AAA'], ['BBB']],
    );
    assert.equal(history.offered[0]![0]!.intervalLevel, 0.95);
    assert.equal(history.offered[0]![0]!.marketSource, 'synthetic');
  });

  test('a record the writer refused (closed, memory full) is offered again when next served', async () => {
    const [a] = await records();
    let refuse = true;
    const history = writer((rows) => (refuse ? { accepted: 0, refused: rows.length } : {}));
    const sink = historyOfPredictions(history, 'synthetic');
    sink.served([a!]);
    sink.served([a!]);
    refuse = false;
    sink.served([a!]);
    sink.served([a!]);
    assert.equal(history.offered.length, 3);
  });

  test('an equal record that is another object (made again from bars fetched again) is offered', async () => {
    const [a] = await records();
    const again = { ...a! };
    const history = writer();
    const sink = historyOfPredictions(history, 'synthetic');
    sink.served([a!]);
    sink.served([again]);
    assert.equal(history.offered.length, 2, 'the writer’s own repeat filter decides about equal rows');
  });
});
