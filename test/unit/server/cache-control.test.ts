import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { msUntilNextBar, syntheticFeed } from '../../../src/infra/market-data/feed.js';
import { createReplay } from '../../../src/infra/market-data/replay.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { cacheControlValue } from '../../../src/server/cache-control.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('how long an answer may be cached: until the next bar could arrive, within the ceiling', () => {
  test('without a feed, bars change only through imports: the ceiling alone bounds max-age', () => {
    assert.equal(msUntilNextBar(undefined), Number.POSITIVE_INFINITY);
    assert.equal(cacheControlValue({ maxAgeSeconds: 60, msUntilNextBar: () => Number.POSITIVE_INFINITY }, false), 'public, max-age=60');
    assert.equal(cacheControlValue({ maxAgeSeconds: 0, msUntilNextBar: () => Number.POSITIVE_INFINITY }, false), 'public, no-cache');
  });

  test('a feed that may announce at any moment (a vendor stream, or one not started) allows no max-age', () => {
    assert.equal(msUntilNextBar({}), 0);
    const market = createSyntheticMarket({ symbols: ['AAA'], seed: 1, historyBars: 30, startTime: new Date('2024-01-01') });
    assert.equal(msUntilNextBar(syntheticFeed(market, 1_000)), 0);
    assert.equal(cacheControlValue({ maxAgeSeconds: 60, msUntilNextBar: () => 0 }, true), 'private, no-cache');
    assert.equal(cacheControlValue({ maxAgeSeconds: 60, msUntilNextBar: () => 999 }, true), 'private, no-cache');
  });

  test('the synthetic feed: at most one tick after the last, counting down; max-age rounds down', async () => {
    const market = createSyntheticMarket({ symbols: ['AAA'], seed: 1, historyBars: 30, startTime: new Date('2024-01-01') });
    const feed = syntheticFeed(market, 300);
    let ticks = 0;
    feed.start(() => ticks++);
    try {
      const first = msUntilNextBar(feed);
      assert.ok(first > 250 && first <= 300, String(first));
      await sleep(100);
      assert.ok(msUntilNextBar(feed) <= first - 90, 'counts down');
      await sleep(260);
      assert.equal(ticks, 1);
      const afterTick = msUntilNextBar(feed);
      assert.ok(afterTick > 200 && afterTick <= 300, `restarts from the tick: ${afterTick}`);
      assert.equal(cacheControlValue({ maxAgeSeconds: 60, msUntilNextBar: () => 2_999 }, false), 'public, max-age=2');
      assert.equal(cacheControlValue({ maxAgeSeconds: 1, msUntilNextBar: () => 2_999 }, true), 'private, max-age=1');
    } finally {
      await feed.stop();
    }
  });

  test('the replay feed: while a step reads the next bars, one may appear at any moment', async () => {
    let release!: () => void;
    const reading = new Promise<void>((resolve) => (release = resolve));
    const replay = createReplay({
      repository: {
        listSymbols: async () => ['AAA'],
        fetchBars: async () => new Map(),
        nextBars: async () => {
          await reading;
          return [];
        },
      },
      from: new Date('2024-01-01'),
      tickMs: 200,
    });
    replay.feed.start(() => undefined);
    try {
      assert.ok(msUntilNextBar(replay.feed) > 150);
      await sleep(230); // the first step runs, waiting on nextBars
      assert.equal(msUntilNextBar(replay.feed), 0);
      release();
    } finally {
      await replay.feed.stop();
    }
  });
});
