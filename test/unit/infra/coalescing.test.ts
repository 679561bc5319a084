import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coalescingFetches } from '../../../src/infra/market-data/coalescing.js';
import type { Bar, FetchBarsOptions, MarketDataProvider } from '../../../src/infra/market-data/market-data.js';

function recordingProvider(delayMs = 5, fail?: () => boolean) {
  const calls: Array<{ symbols: string[]; options: FetchBarsOptions }> = [];
  const provider: MarketDataProvider = {
    name: 'fake',
    listSymbols: async () => [],
    async fetchBars(symbols, options) {
      calls.push({ symbols: [...symbols], options });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (fail?.()) throw new Error('provider down');
      return new Map(symbols.filter((s) => s !== 'NONE').map((s) => [s, [{ symbol: s } as Bar]]));
    },
  };
  return { provider, calls };
}

describe('coalescingFetches', () => {
  test('calls in the same turn share one fetch, and each caller gets only its own symbols', async () => {
    const { provider, calls } = recordingProvider();
    const market = coalescingFetches(provider, { maxDelayMs: 0 });
    const [a, b, c] = await Promise.all([
      market.fetchBars(['AAPL', 'MSFT'], { lookback: 10 }),
      market.fetchBars(['MSFT', 'XOM'], { lookback: 10 }),
      market.fetchBars(['NONE'], { lookback: 10 }),
    ]);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.symbols, ['AAPL', 'MSFT', 'XOM', 'NONE']);
    assert.deepEqual([...a.keys()], ['AAPL', 'MSFT']);
    assert.deepEqual([...b.keys()], ['MSFT', 'XOM']);
    assert.equal(c.size, 0);
  });

  test('requests made while a fetch is in flight go out together in the next one', async () => {
    const { provider, calls } = recordingProvider(20);
    const market = coalescingFetches(provider, { maxDelayMs: 0 });
    const first = market.fetchBars(['A'], { lookback: 5 });
    await new Promise((resolve) => setTimeout(resolve, 5)); // the first fetch is now in flight
    const later = await Promise.all([market.fetchBars(['B'], { lookback: 5 }), market.fetchBars(['C'], { lookback: 5 })]);
    await first;
    assert.deepEqual(
      calls.map((c) => c.symbols),
      [['A'], ['B', 'C']],
    );
    assert.deepEqual(
      later.map((m) => [...m.keys()]),
      [['B'], ['C']],
    );
  });

  test('different options are never merged', async () => {
    const { provider, calls } = recordingProvider();
    const market = coalescingFetches(provider, { maxDelayMs: 0 });
    const until = new Date('2021-01-01');
    await Promise.all([
      market.fetchBars(['A'], { lookback: 5 }),
      market.fetchBars(['A'], { lookback: 6 }),
      market.fetchBars(['A'], { lookback: 5, until }),
    ]);
    assert.equal(calls.length, 3);
  });

  test('a failed fetch rejects its callers only; the next one works', async () => {
    let failing = true;
    const { provider } = recordingProvider(1, () => failing);
    const market = coalescingFetches(provider, { maxDelayMs: 0 });
    const results = await Promise.allSettled([market.fetchBars(['A'], { lookback: 5 }), market.fetchBars(['B'], { lookback: 5 })]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    failing = false;
    assert.deepEqual([...(await market.fetchBars(['C'], { lookback: 5 })).keys()], ['C']);
  });

  test('a window above 1 ms is refused', () => {
    assert.throws(() => coalescingFetches(recordingProvider().provider, { maxDelayMs: 2 }), /between 0 and 1, got 2/);
  });
});
