import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';

const options = { symbols: ['AAPL', 'BRK.B', 'XOM'], seed: 42, historyBars: 2_000, startTime: new Date('2025-06-02T14:30:00Z') };

describe('synthetic market', () => {
  test('the same seed gives the same history; another seed another', async () => {
    const a = await createSyntheticMarket(options).fetchBars(['AAPL'], { lookback: 2_000 });
    const b = await createSyntheticMarket(options).fetchBars(['AAPL'], { lookback: 2_000 });
    const c = await createSyntheticMarket({ ...options, seed: 43 }).fetchBars(['AAPL'], { lookback: 2_000 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.get('AAPL')!.map((x) => x.close),
      c.get('AAPL')!.map((x) => x.close),
    );
  });

  test('bars are consistent, daily, ascending, ending the day before the start, and labelled synthetic', async () => {
    const bars = (await createSyntheticMarket(options).fetchBars(['BRK.B'], { lookback: 2_000 })).get('BRK.B')!;
    assert.equal(bars.length, 2_000);
    assert.equal(bars.at(-1)!.time.toISOString(), '2025-06-01T00:00:00.000Z');
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i]!;
      assert.equal(b.source, 'synthetic');
      assert.ok(b.low > 0 && b.low <= Math.min(b.open, b.close) && b.high >= Math.max(b.open, b.close), `bar ${i}`);
      assert.ok(b.volume > 0);
      if (i > 0) assert.equal(b.time.getTime() - bars[i - 1]!.time.getTime(), 86_400_000);
    }
  });

  test('returns have fat tails and volatility clusters, like markets do', async () => {
    const bars = (await createSyntheticMarket({ ...options, historyBars: 5_000 }).fetchBars(['XOM'], { lookback: 5_000 })).get('XOM')!;
    const r = bars.slice(1).map((b, i) => Math.log(b.close / bars[i]!.close));
    const m = r.reduce((s, x) => s + x, 0) / r.length;
    const v = r.reduce((s, x) => s + (x - m) ** 2, 0) / r.length;
    const kurtosis = r.reduce((s, x) => s + (x - m) ** 4, 0) / r.length / v ** 2;
    assert.ok(kurtosis > 4, `kurtosis ${kurtosis.toFixed(2)} should exceed a normal's 3`);
    const sq = r.map((x) => (x - m) ** 2);
    const sqMean = sq.reduce((s, x) => s + x, 0) / sq.length;
    let num = 0;
    let den = 0;
    for (let i = 1; i < sq.length; i++) num += (sq[i]! - sqMean) * (sq[i - 1]! - sqMean);
    for (const x of sq) den += (x - sqMean) ** 2;
    assert.ok(num / den > 0.05, `autocorrelation of squared returns ${(num / den).toFixed(3)} shows clustering`);
  });

  test('fetchBars answers many symbols at once, honours lookback and until, and omits unknown symbols', async () => {
    const market = createSyntheticMarket(options);
    const result = await market.fetchBars(['AAPL', 'XOM', 'NOPE'], { lookback: 10, until: new Date('2025-01-01T00:00:00Z') });
    assert.deepEqual([...result.keys()], ['AAPL', 'XOM']);
    assert.equal(result.get('AAPL')!.length, 10);
    assert.equal(result.get('AAPL')!.at(-1)!.time.toISOString(), '2025-01-01T00:00:00.000Z');
    assert.deepEqual(await market.listSymbols(), ['AAPL', 'BRK.B', 'XOM']);
  });

  test('advance adds one bar per symbol at the given time, continuing from the last close', async () => {
    const market = createSyntheticMarket(options);
    const before = (await market.fetchBars(['AAPL'], { lookback: 1 })).get('AAPL')![0]!;
    const at = new Date('2025-06-02T14:30:05Z');
    const added = market.advance(at);
    assert.equal(added.length, 3);
    const after = (await market.fetchBars(['AAPL'], { lookback: 2 })).get('AAPL')!;
    assert.deepEqual(after[0], before);
    assert.equal(after[1]!.time.getTime(), at.getTime());
    assert.ok(Math.abs(Math.log(after[1]!.close / before.close)) < 0.5);
  });
});

describe('synthetic market memory', () => {
  test('keeps at most retainBars per symbol (plus a chunk before it trims), always the latest, whatever the number of ticks', async () => {
    const market = createSyntheticMarket({ ...options, historyBars: 100, retainBars: 200 });
    const start = options.startTime.getTime();
    let last: ReturnType<typeof market.advance> = [];
    for (let i = 1; i <= 5_000; i++) {
      last = market.advance(new Date(start + i * 1_000));
      const held = (await market.fetchBars(['AAPL'], { lookback: 1_000_000 })).get('AAPL')!;
      assert.ok(held.length <= 200 + 64, `tick ${i}: ${held.length} bars held`);
      if (i === 5_000) {
        assert.ok(held.length >= 200);
        assert.deepEqual(held.at(-1), last[0], 'the newest bar is the one just added');
        for (let k = 1; k < held.length; k++)
          assert.equal(held[k]!.time.getTime() - held[k - 1]!.time.getTime(), 1_000, 'contiguous: only the oldest were dropped');
      }
    }
  });

  test('by default keeps as many bars as the history it started with; prices continue across a trim', async () => {
    const market = createSyntheticMarket({ ...options, historyBars: 100 });
    const start = options.startTime.getTime();
    for (let i = 1; i <= 1_000; i++) {
      const before = (await market.fetchBars(['XOM'], { lookback: 1 })).get('XOM')![0]!;
      const [, , xom] = market.advance(new Date(start + i * 1_000));
      assert.ok(Math.abs(Math.log(xom!.open / before.close)) < 0.5, `tick ${i} opens near the previous close`);
    }
    const held = (await market.fetchBars(['XOM'], { lookback: 1_000_000 })).get('XOM')!;
    assert.ok(held.length >= 100 && held.length <= 164, `${held.length} bars held`);
  });
});
