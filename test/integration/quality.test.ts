import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from '../../src/infra/market-data/bars-store.js';
import { countingFlags, createIngestFeed } from '../../src/infra/market-data/feed.js';
import { importFiles } from '../../src/infra/market-data/importer.js';
import { STORED_MARKET, type Bar } from '../../src/infra/market-data/market-data.js';
import { isSession } from '../../src/infra/market-data/nyse-calendar.js';
import { HistoryRepository, OutcomesRepository, OutcomesService, type HistoryRow } from '../../src/modules/history/index.js';
import { historyWithOutcomes } from '../helpers/outcomes.js';
import { createTestDatabase, stackName, tempDir, type TestDatabase } from '../helpers/services.js';

const silent = createLogger({ level: 'silent', format: 'json' });
const DAY_MS = 86_400_000;

/** `count` consecutive NYSE sessions from `first`. */
function sessions(first: string, count: number): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${first}T00:00:00Z`); out.length < count; t += DAY_MS) {
    if (isSession(new Date(t))) out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/**
 * An Alpha Vantage file of 40 sessions from 2021-03-01 (Good Friday 2021-04-02 inside: not a gap) with
 * one of each suspect bar: a flat bar with volume (day 25), a zero-volume bar (day 27), a missing
 * session (day 30 is left out, so day 31 has a gap before it), a 2-for-1 split on day 33 (raw prices
 * halve, the adjusted close does not) and a +25 % move on day 36. Returns the file and its dates.
 */
function writeFixture(dir: string): { file: string; dates: string[] } {
  const dates = sessions('2021-03-01', 40);
  const lines = ['timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient'];
  let adj = 100;
  dates.forEach((date, i) => {
    if (i === 30) return;
    if (i > 0) adj *= i === 36 ? 1.25 : Math.exp(i % 2 === 0 ? 0.01 : -0.01);
    const raw = i < 33 ? 2 : 1;
    const close = adj * raw;
    let [open, high, low, volume] = [close * 0.999, close * 1.01, close * 0.99, 1_000_000 * (i < 33 ? 1 : 2)];
    if (i === 25) [open, high, low] = [close, close, close];
    if (i === 27) volume = 0;
    lines.push([date, open, high, low, close, adj, volume, 0, i === 33 ? 2 : 1].map(String).join(','));
  });
  const file = path.join(dir, 'QA.csv');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, dates };
}

describe(`data quality: import stores flags, ingest flags and counts, outcomes skip excluded bars (${stackName})`, () => {
  const inputs = tempDir('sibyl-quality-');
  let target: TestDatabase;
  let database: Database;
  let fixture: { file: string; dates: string[] };

  before(async () => {
    fixture = writeFixture(inputs.dir);
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
  });
  after(async () => {
    await database?.close();
    await target?.drop();
    inputs.remove();
  });

  test('import stores every bar, suspect ones with their flags; a split and a holiday are not flagged', async () => {
    const report = await importFiles(database.db, [fixture.file]);
    assert.equal(report.outcome, 'complete');
    assert.equal(report.inserted, 39);
    assert.deepEqual(report.flagged, { flat_price: 1, zero_volume: 1, session_gap: 1, large_move: 1 });

    const repository = new BarsRepository(database.db);
    const flagged = await repository.listFlagged();
    const { dates } = fixture;
    assert.deepEqual(
      flagged.map((b) => [b.time.toISOString().slice(0, 10), b.quality]),
      [
        [dates[25], ['flat_price']],
        [dates[27], ['zero_volume']],
        [dates[31], ['session_gap']],
        [dates[36], ['large_move']],
      ],
    );
    assert.deepEqual(
      await repository.countFlagged(),
      new Map([
        ['flat_price', 1],
        ['large_move', 1],
        ['session_gap', 1],
        ['zero_volume', 1],
      ]),
    );
    // Filters: by flag, by date, by symbol.
    assert.deepEqual((await repository.listFlagged({ reasons: ['session_gap', 'large_move'] })).length, 2);
    assert.deepEqual((await repository.listFlagged({ from: new Date(`${dates[30]}T00:00:00Z`) })).length, 2);
    assert.deepEqual((await repository.listFlagged({ symbols: ['NOPE'] })).length, 0);
    // Served with the flags; clean bars with an empty list.
    const served = (await createBarsStoreProvider(repository).fetchBars(['QA'], { lookback: 100 })).get('QA')!;
    assert.equal(served.length, 39);
    assert.deepEqual(served.find((b) => b.time.toISOString().startsWith(dates[25]!))!.quality, ['flat_price']);
    assert.deepEqual(served.find((b) => b.time.toISOString().startsWith(dates[33]!))!.quality, []); // the split day
    // Re-importing is idempotent, flags included.
    const again = await importFiles(database.db, [fixture.file]);
    assert.equal(again.updated, 39);
    assert.equal((await repository.listFlagged()).length, 4);
  });

  test('outcomes: a prediction measured on an excluded bar stays pending; one on clean bars resolves', async () => {
    const repository = new BarsRepository(database.db);
    const bars = (await repository.fetchBars(['QA'], { lookback: 100 })).get('QA')!;
    const at = (date: string) => bars.find((b) => b.time.toISOString().startsWith(date))!;
    const { dates } = fixture;
    const rows: HistoryRow[] = [
      row(at(dates[24]!)), // its next bar is the flat one: excluded
      row(at(dates[25]!)), // on the flat bar itself: excluded
      row(at(dates[29]!)), // its next bar comes after a missing session: excluded
      row(at(dates[35]!)), // its next bar is the large move: kept (a real move is an outcome)
      row(at(dates[10]!)), // clean
    ];
    await new HistoryRepository(database.db).insertMany(rows);
    const report = await new OutcomesService({
      repository: new OutcomesRepository(database.db, STORED_MARKET),
      market: createBarsStoreProvider(repository),
      logger: silent,
    }).resolve();
    assert.equal(report.excluded, 3);
    assert.equal(report.resolved, 2);
    const stored = await historyWithOutcomes(database.db);
    const pending = stored
      .filter((r) => r.realized_return === null)
      .map((r) => r.time.toISOString().slice(0, 10))
      .sort();
    assert.deepEqual(pending, [dates[24], dates[25], dates[29]]);
  });

  test('ingest: a vendor bar after a missing session is stored flagged and counted; a refused batch stores nothing', async () => {
    const repository = new BarsRepository(database.db);
    const counted = new Map<string, number>();
    const feed = createIngestFeed(
      'fake',
      countingFlags(repository, (reason, n) => counted.set(reason, (counted.get(reason) ?? 0) + n)),
    );
    const announced: Bar[][] = [];
    feed.start((bars) => announced.push([...bars]));
    const last = (await repository.fetchBars(['QA'], { lookback: 1 })).get('QA')![0]!;
    const next = sessions(last.time.toISOString().slice(0, 10), 4);
    const base = { symbol: 'QA', source: 'fake', adjClose: last.adjClose, close: last.close, volume: 5_000 };
    // next[1] and next[2] are skipped: the bar of next[3] has two missing sessions before it.
    await feed.ingest([
      { ...base, time: new Date(`${next[3]}T00:00:00Z`), open: last.close, high: last.close * 1.01, low: last.close * 0.99 },
    ]);
    const stored = (await repository.fetchBars(['QA'], { lookback: 1 })).get('QA')![0]!;
    assert.deepEqual(stored.quality, ['session_gap']);
    assert.deepEqual(counted, new Map([['session_gap', 1]]));
    assert.equal(announced.length, 1);
    await feed.stop();
  });
});

function row(bar: Bar): HistoryRow {
  return {
    time: bar.time,
    symbol: bar.symbol,
    strategy: 'direction-1d',
    modelVersion: 'v1',
    horizon: '1d',
    probability: 0.6,
    marketSource: STORED_MARKET,
    confidence: 0.6,
    signal: 'BUY',
    expectedReturn: null,
    intervalLevel: 0.95,
    intervalLow: bar.close * 0.9,
    intervalHigh: bar.close * 1.1,
    featuresHash: 'h',
  };
}
