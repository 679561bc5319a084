import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { buildSamples } from '../../../src/training/dataset.js';
import { barsToColumns, columnsToBars } from '../../../src/training/retrain-protocol.js';
import { DEFAULT_PERIODS, periodsEndingAt } from '../../../src/training/train.js';

/**
 * The path bars take from the bars store to the training child: the gateway turns each symbol's bars
 * into columns (retrain-protocol.ts), they are structured-cloned over IPC, and the child turns them back
 * into bars for buildSamples. Whatever the trip, the child must see the very dataset the CLI would.
 */
async function storeLikeBars(): Promise<Map<string, Bar[]>> {
  const market = createSyntheticMarket({
    symbols: ['AAA', 'BBB'],
    seed: 11,
    historyBars: 400,
    startTime: new Date('2020-01-01T00:00:00Z'),
  });
  const bars = await market.fetchBars(['AAA', 'BBB'], { lookback: 400 });
  // As the bars store returns them: every bar checked (quality present); a few flagged the ways training
  // excludes (flat price) or keeps (large move); and one bar never checked (no quality at all).
  for (const [symbol, list] of bars) {
    bars.set(
      symbol,
      list.map((bar, i) => {
        if (i === 150) return { ...bar, open: bar.close, high: bar.close, low: bar.close, quality: ['flat_price'] };
        if (i === 151) return { ...bar, quality: ['large_move', 'session_gap'] };
        if (symbol === 'BBB' && i === 10) return { ...bar, source: 'polygon' };
        if (i === 200) {
          const { quality: _dropped, ...unchecked } = bar;
          return unchecked;
        }
        return { ...bar, quality: [] };
      }),
    );
  }
  return bars;
}

describe('bars → columns → bars → dataset', () => {
  test('every field and flag survives the trip, including structured clone (what IPC does)', async () => {
    const bars = await storeLikeBars();
    for (const [symbol, list] of bars) {
      const travelled = columnsToBars(symbol, structuredClone(barsToColumns(list)));
      assert.deepEqual(travelled, list);
    }
  });

  test('the child builds exactly the samples the gateway would have, the flagged bars dropped the same way', async () => {
    const bars = await storeLikeBars();
    const travelled = new Map([...bars].map(([symbol, list]) => [symbol, columnsToBars(symbol, structuredClone(barsToColumns(list)))]));
    const direct = buildSamples(bars, 1);
    const child = buildSamples(travelled, 1);
    assert.equal(child.length, direct.length);
    assert.deepEqual(child.x, direct.x);
    assert.deepEqual(child.y, direct.y);
    assert.deepEqual(child.time, direct.time);
    assert.deepEqual(child.forwardReturn, direct.forwardReturn);
    // The flat bar (150) and the session-gap bar (151) leave out the samples at 150 and 151 (asOf) and at 149
    // (whose label is 150): three per symbol. The large move and the unchecked bar leave nothing out.
    const unflagged = buildSamples(new Map([...bars].map(([s, list]) => [s, list.map((b) => ({ ...b, quality: [] as const }))])), 1);
    assert.equal(unflagged.length - direct.length, 2 * 3, `dropped: ${unflagged.length - direct.length}`);
  });
});

describe('periodsEndingAt', () => {
  test('three years held out and three validated, ending at the last bar; close to the committed split on the committed data', () => {
    const periods = periodsEndingAt(new Date('2021-04-21T00:00:00Z'));
    assert.equal(periods.testFrom.toISOString(), '2018-04-21T00:00:00.000Z');
    assert.equal(periods.validationFrom.toISOString(), '2015-04-21T00:00:00.000Z');
    assert.ok(Math.abs(periods.testFrom.getTime() - DEFAULT_PERIODS.testFrom.getTime()) < 120 * 86_400_000);
    const later = periodsEndingAt(new Date('2026-12-04T00:00:00Z'), 2);
    assert.deepEqual(
      [later.validationFrom.toISOString(), later.testFrom.toISOString()],
      ['2022-12-04T00:00:00.000Z', '2024-12-04T00:00:00.000Z'],
    );
  });
});
