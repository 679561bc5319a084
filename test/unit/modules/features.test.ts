import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { FEATURE_NAMES, FEATURE_WINDOW, InsufficientHistoryError, computeFeatures, featuresHash } from '../../../src/domain/features.js';

const feature = (values: Float64Array, name: string) => values[FEATURE_NAMES.indexOf(name)]!;

function series(closes: number[], volume = 1_000_000): Bar[] {
  return closes.map((close, i) => ({
    symbol: 'TEST',
    time: new Date(Date.UTC(2020, 0, 1) + i * 86_400_000),
    open: close,
    high: close * 1.01,
    low: close * 0.99,
    close,
    adjClose: close,
    volume,
    source: 'test',
  }));
}

describe('computeFeatures', () => {
  test('a flat price gives neutral values', () => {
    const { values } = computeFeatures(series(Array(FEATURE_WINDOW).fill(50)));
    for (const name of [
      'ret_1d',
      'ret_5d',
      'ret_20d',
      'ret_60d',
      'vol_20d',
      'macd_hist',
      'ma_dist_20',
      'ma_dist_50',
      'dollar_volume_z20',
    ]) {
      assert.equal(feature(values, name), 0, name);
    }
    assert.equal(feature(values, 'rsi_14'), 0.5);
    assert.equal(feature(values, 'vol_ratio_5_20'), 1);
    assert.equal(feature(values, 'range_pos_20'), 0.5);
    assert.ok(Math.abs(feature(values, 'hl_range') - 0.02) < 1e-12);
  });

  test('a steady climb: all gains, returns as computed by hand, price above its averages', () => {
    const closes = Array.from({ length: FEATURE_WINDOW }, (_, i) => 100 * 1.01 ** i);
    const { values } = computeFeatures(series(closes));
    assert.ok(Math.abs(feature(values, 'ret_1d') - Math.log(1.01)) < 1e-12);
    assert.ok(Math.abs(feature(values, 'ret_20d') - 20 * Math.log(1.01)) < 1e-12);
    assert.equal(feature(values, 'rsi_14'), 1);
    assert.equal(feature(values, 'range_pos_20'), 1);
    assert.ok(feature(values, 'ma_dist_20') > 0 && feature(values, 'ma_dist_50') > feature(values, 'ma_dist_20'));
    assert.ok(Math.abs(feature(values, 'vol_20d')) < 1e-12);
  });

  test('asOf is the last bar; fewer bars than the window is refused with the counts', () => {
    const bars = series(Array(FEATURE_WINDOW + 5).fill(10));
    assert.deepEqual(computeFeatures(bars).asOf, bars.at(-1)!.time);
    assert.throws(
      () => computeFeatures(bars.slice(0, FEATURE_WINDOW - 1)),
      (error: unknown) => {
        assert.ok(error instanceof InsufficientHistoryError);
        assert.match(error.message, new RegExp(`${FEATURE_WINDOW - 1} bars available, features need ${FEATURE_WINDOW}`));
        return true;
      },
    );
  });

  test('only the last FEATURE_WINDOW bars matter, and the same bars always give the same vector and hash', async () => {
    const market = createSyntheticMarket({ symbols: ['AAA'], seed: 7, historyBars: 400, startTime: new Date('2024-01-01') });
    const bars = (await market.fetchBars(['AAA'], { lookback: 400 })).get('AAA')!;
    const full = computeFeatures(bars);
    const windowOnly = computeFeatures(bars.slice(-FEATURE_WINDOW));
    assert.deepEqual(full.values, windowOnly.values);
    assert.equal(full.hash, windowOnly.hash);
    assert.equal(computeFeatures(bars.map((b) => ({ ...b }))).hash, full.hash);
    assert.ok(full.values.every(Number.isFinite));
    const earlier = computeFeatures(bars.slice(0, -1));
    assert.notEqual(earlier.hash, full.hash);
  });

  test('dollar volume makes the volume feature blind to a split (volume ×4, raw price ÷4)', () => {
    const closes = Array.from({ length: FEATURE_WINDOW }, (_, i) => 100 + Math.sin(i) * 3);
    const bars = series(closes).map((b, i) => ({ ...b, volume: 1e6 + (i % 7) * 1e5 }));
    const split = bars.map((b, i) =>
      i >= 90 ? { ...b, close: b.close / 4, high: b.high / 4, low: b.low / 4, open: b.open / 4, volume: b.volume * 4 } : b,
    );
    const a = feature(computeFeatures(bars).values, 'dollar_volume_z20');
    const b = feature(computeFeatures(split).values, 'dollar_volume_z20');
    assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
  });

  test('featuresHash changes with any value', () => {
    const values = new Float64Array([1, 2, 3]);
    const h = featuresHash(values);
    assert.match(h, /^[0-9a-f]{32}$/);
    assert.equal(featuresHash(new Float64Array([1, 2, 3])), h);
    assert.notEqual(featuresHash(new Float64Array([1, 2, 3 + 1e-12])), h);
  });
});
