import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { intervalQuantiles } from '../../../src/domain/intervals.js';
import { manifestSchema } from '../../../src/domain/manifest.js';
import type { ModelVersionEntry } from '../../../src/modules/models/index.js';
import { priceInterval, type PredictionRecord } from '../../../src/modules/predictions/index.js';
import { fromRecorded, type RecordedPrediction } from '../../../src/modules/signals/index.js';
import { projectRoot } from '../../helpers/process.js';

/**
 * A resumed signal is rebuilt from history's stored 0.95 interval: the volatility and the close come back
 * from its bounds. With one quantile per tail (the committed manifests since the 5-day criterion of
 * issue 19) the centre of the stored range is not the close, so the rebuild must use q⁻ and q⁺.
 */
test('fromRecorded recovers volatility and close from an interval with different tail quantiles', () => {
  for (const strategy of ['direction-1d', 'direction-5d']) {
    const file = path.join(projectRoot, 'models', strategy, 'v1', 'manifest.json');
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    const [qLow, qHigh] = intervalQuantiles(manifest.interval, 0.95)!;
    assert.ok(qLow > qHigh * 1.1, `${strategy}: the committed interval is asymmetric (q⁻ ${qLow}, q⁺ ${qHigh})`);
    const model = { manifest } as unknown as ModelVersionEntry;
    const close = 123.45;
    const volatility = 0.021;
    const live = priceInterval({ model, quote: { close }, volatility } as unknown as PredictionRecord, 0.95);
    const row = {
      time: new Date('2020-03-16T00:00:00Z'),
      symbol: 'AAPL',
      model_version: 'v1',
      horizon: manifest.horizon,
      probability: 0.5,
      confidence: 0.5,
      signal: 'HOLD',
      expected_return: null,
      interval_level: 0.95,
      interval_low: live.low,
      interval_high: live.high,
      features_hash: 'x',
    } as RecordedPrediction;
    const rebuilt = fromRecorded(strategy, row, model, undefined);
    assert.ok(Math.abs(rebuilt.volatility - volatility) <= 1e-12, `${strategy} volatility ${rebuilt.volatility}`);
    assert.ok(Math.abs(rebuilt.quote.close - close) <= 1e-9 * close, `${strategy} close ${rebuilt.quote.close}`);
    const again = priceInterval(rebuilt, 0.95);
    assert.ok(Math.abs(again.low - live.low) <= 1e-9 * close && Math.abs(again.high - live.high) <= 1e-9 * close, strategy);
  }
});
