import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { wsClient } from '../helpers/graphql.js';
import { SignalRecorder } from '../helpers/signals.js';
import { stackName } from '../helpers/services.js';

const DAY_MS = 86_400_000;

/** Stored bars as an import would leave them (the synthetic generator, relabelled). */
async function storedBars(symbols: readonly string[], count = 150): Promise<Bar[]> {
  const market = createSyntheticMarket({ symbols, seed: 7, historyBars: count, startTime: new Date('2024-03-01T00:00:00Z') });
  return [...(await market.fetchBars(symbols, { lookback: count })).values()].flat().map((bar) => ({ ...bar, source: 'test-feed' }));
}

describe(`signals from stored bars without bar events: the interval fallback (${stackName})`, () => {
  let server: TestGateway;
  let client: Client;
  let bars: Bar[];
  before(async () => {
    bars = await storedBars(['S01', 'S02']);
    server = await startTestGateway({ SIGNALS_INTERVAL_MS: '300' }, { bars });
    client = wsClient(server.url);
  });
  after(async () => {
    await client.dispose();
    await server.close();
  });

  test('the current bar’s prediction first, then one per bar that appears in the store, never a repeat', async () => {
    const s = new SignalRecorder(client, { symbols: ['S01'] }, 'symbol asOf confidence quote { close source }');
    const last = bars.filter((b) => b.symbol === 'S01').at(-1)!;
    await s.until((r) => r.messages.length >= 1, 20_000, 'the current prediction');
    assert.equal(s.messages[0]!.asOf, last.time.toISOString());
    // A bar lands in the store the way a vendor ingest would write it (no event): the interval finds it.
    const next: Bar = {
      ...last,
      time: new Date(last.time.getTime() + DAY_MS),
      open: last.close,
      high: last.close * 1.02,
      low: last.close * 0.99,
      close: last.close * 1.01,
      adjClose: last.adjClose * 1.01,
    };
    await new BarsRepository(server.gateway.database.db).upsert([next]);
    await s.until((r) => r.messages.length >= 2, 20_000, 'the new bar’s prediction');
    assert.equal(s.messages[1]!.asOf, next.time.toISOString());
    assert.deepEqual(s.messages[1]!.quote, { close: next.close, source: 'test-feed' });
    // Several more interval ticks: nothing new, nothing sent.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(s.messages.length, 2);
    s.dispose();
  });
});

describe(`signals from a replay of stored bars (${stackName})`, () => {
  let server: TestGateway;
  let client: Client;
  let bars: Bar[];
  before(async () => {
    bars = await storedBars(['S01', 'S02']);
    const from = bars.filter((b) => b.symbol === 'S01')[119]!.time.toISOString();
    server = await startTestGateway({ MARKET_REPLAY_FROM: from, MARKET_REPLAY_TICK_MS: '250', SIGNALS_INTERVAL_MS: '0' }, { bars });
    client = wsClient(server.url);
  });
  after(async () => {
    await client.dispose();
    await server.close();
  });

  test('each tick publishes the next stored bar, in order, with the stored prices; the store is unchanged', async () => {
    const s = new SignalRecorder(client, { symbols: ['S01', 'S02'] }, 'symbol asOf quote { close source }');
    await s.until((r) => r.ticks().length >= 4, 30_000, '4 replayed bars');
    s.dispose();
    const stored = new Map(bars.map((b) => [`${b.symbol}@${b.time.toISOString()}`, b]));
    const s01 = bars.filter((b) => b.symbol === 'S01').map((b) => b.time.toISOString());
    const ticks = s.ticks();
    const first = s01.indexOf(ticks[0]!);
    assert.ok(first > 119, 'replay starts after MARKET_REPLAY_FROM');
    assert.deepEqual(ticks, s01.slice(first, first + ticks.length), 'consecutive stored bar times');
    for (const m of s.messages) {
      const bar = stored.get(`${m.symbol}@${m.asOf}`);
      assert.ok(bar, `${m.symbol}@${m.asOf} is a stored bar`);
      assert.deepEqual(m.quote, { close: bar.close, source: 'test-feed' });
    }
    assert.equal(await new BarsRepository(server.gateway.database.db).countBars(), bars.length);
  });
});
