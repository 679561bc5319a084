import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from '../../src/infra/market-data/bars-store.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

const DAY_MS = 86_400_000;
const START = Date.UTC(2020, 0, 1);

/** `count` consecutive daily bars of `symbol` from 2020-01-01, with prices that identify the day. */
function dailyBars(symbol: string, count: number, options: { from?: number; close?: number } = {}): Bar[] {
  const from = options.from ?? 0;
  return Array.from({ length: count }, (_, i) => {
    const close = options.close ?? 100 + from + i;
    return {
      symbol,
      time: new Date(START + (from + i) * DAY_MS),
      open: close,
      high: close + 1,
      low: close - 1,
      close,
      adjClose: close / 2,
      volume: 1000 + from + i,
      source: 'test',
      quality: [], // stored bars come back with their data-quality flags; these are clean
    };
  });
}

describe(`bars repository (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let bars: BarsRepository;

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    bars = new BarsRepository(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate market_bars`.execute(database.db);
  });

  test('upsert counts inserted and updated bars, and stores no duplicates', async () => {
    assert.deepEqual(await bars.upsert(dailyBars('AAPL', 10)), { inserted: 10, updated: 0 });
    // Five already stored (changed or not, they count as updated), five new.
    assert.deepEqual(await bars.upsert(dailyBars('AAPL', 10, { from: 5, close: 50 })), { inserted: 5, updated: 5 });
    assert.deepEqual(await bars.upsert(dailyBars('AAPL', 15)), { inserted: 0, updated: 15 });
    assert.equal(await bars.countBars(), 15);
    assert.deepEqual(await bars.upsert([]), { inserted: 0, updated: 0 });
  });

  test('upsert replaces every field of a stored bar, and merges repeats within one call (last wins)', async () => {
    const [original] = dailyBars('MSFT', 1);
    assert.ok(original);
    await bars.upsert([original]);
    const replaced: Bar = { ...original, open: 7, high: 9, low: 6, close: 8, adjClose: 4, volume: 5, source: 'yahoo' };
    assert.deepEqual(await bars.upsert([{ ...original, close: 1e9, high: 1e9 }, replaced]), { inserted: 0, updated: 1 });
    assert.deepEqual((await bars.fetchBars(['MSFT'], { lookback: 5 })).get('MSFT'), [replaced]);
  });

  test('fetchBars returns the last N bars at or before `until` per symbol, ascending, with numbers and Dates', async () => {
    await bars.upsert([...dailyBars('AAPL', 30), ...dailyBars('BRK.B', 3), ...dailyBars('TSLA', 5, { from: 20 })]);
    const until = new Date(START + 9 * DAY_MS);
    const result = await bars.fetchBars(['AAPL', 'BRK.B', 'TSLA', 'NOPE', 'AAPL'], { lookback: 4, until });
    assert.deepEqual([...result.keys()].sort(), ['AAPL', 'BRK.B']); // TSLA starts after `until`; NOPE has none
    assert.deepEqual(result.get('AAPL'), dailyBars('AAPL', 4, { from: 6 }));
    assert.deepEqual(result.get('BRK.B'), dailyBars('BRK.B', 3));

    const newest = await bars.fetchBars(['TSLA'], { lookback: 2 });
    assert.deepEqual(newest.get('TSLA'), dailyBars('TSLA', 2, { from: 23 }));
    assert.deepEqual(await bars.fetchBars([], { lookback: 2 }), new Map());
    await assert.rejects(bars.fetchBars(['AAPL'], { lookback: 0 }), /lookback to be a positive integer.*got 0/);
  });

  test('listSymbols, countBars and latestTimes answer over all symbols', async () => {
    assert.deepEqual(await bars.listSymbols(), []);
    await bars.upsert([...dailyBars('MSFT', 3), ...dailyBars('AAPL', 2), ...dailyBars('BRK.B', 4)]);
    assert.deepEqual(await bars.listSymbols(), ['AAPL', 'BRK.B', 'MSFT']);
    assert.equal(await bars.countBars(), 9);
    assert.deepEqual(
      await bars.latestTimes(['AAPL', 'MSFT', 'NOPE']),
      new Map([
        ['AAPL', new Date(START + 1 * DAY_MS)],
        ['MSFT', new Date(START + 2 * DAY_MS)],
      ]),
    );
  });

  test('the CHECK constraints refuse a bad bar, and the whole upsert leaves stored bars unchanged', async () => {
    const stored = dailyBars('AAPL', 3);
    await bars.upsert(stored);
    const [good] = dailyBars('AAPL', 1, { from: 1, close: 500 });
    assert.ok(good);
    const bad: Array<[constraint: string, change: Partial<Bar>]> = [
      ['market_bars_prices_positive', { adjClose: 0 }],
      ['market_bars_prices_positive', { low: -1 }],
      ['market_bars_prices_positive', { adjClose: Number.NaN }], // NaN > 0 is true in PostgreSQL
      ['market_bars_ohlc_consistent', { low: good.high + 1 }],
      ['market_bars_ohlc_consistent', { close: good.high + 1 }],
      ['market_bars_volume_nonnegative', { volume: -1 }],
    ];
    for (const [constraint, change] of bad) {
      // The good bar comes first, so a refused upsert must also roll back a bar it already wrote.
      await assert.rejects(bars.upsert([good, { ...good, time: new Date(START + 10 * DAY_MS), ...change }]), new RegExp(constraint));
    }
    assert.deepEqual((await bars.fetchBars(['AAPL'], { lookback: 10 })).get('AAPL'), stored);
  });

  test('an upsert larger than one statement can bind (over 70k bars) is chunked', async () => {
    // Many symbols over two years rather than a few over decades: on TimescaleDB every chunk the one
    // transaction writes is locked until it commits (with its indexes), and the lock table is shared by
    // the whole server. Two years are two or three chunks at the default chunk interval (0014).
    const many = Array.from({ length: 101 }, (_, i) => `S${i}`).flatMap((symbol) => dailyBars(symbol, 700));
    assert.deepEqual(await bars.upsert(many), { inserted: 70_700, updated: 0 });
    assert.equal(await bars.countBars(), 70_700);
  });

  test('the postgres market-data provider delegates to the repository', async () => {
    await bars.upsert(dailyBars('NVDA', 3));
    const provider = createBarsStoreProvider(bars);
    assert.equal(provider.name, 'postgres');
    assert.deepEqual(await provider.listSymbols(), ['NVDA']);
    assert.deepEqual((await provider.fetchBars(['NVDA'], { lookback: 2 })).get('NVDA'), dailyBars('NVDA', 2, { from: 1 }));
  });
});
