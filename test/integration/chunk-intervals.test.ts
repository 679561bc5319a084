import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { CompiledQuery, createQueryId, sql, type Kysely, type KyselyPlugin, type RootOperationNode } from 'kysely';
import * as chunkIntervals from '../../db/migrations/0014_chunk_intervals.js';
import { applyChunkInterval, migrateToLatest, openDatabase, type Database, type Db } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { applyHistoryChunkInterval, historyChunkDays } from '../../src/modules/history/index.js';
import { createTestDatabase, runStatement, stackName, timescaleTests, type TestDatabase } from '../helpers/services.js';

const DAY_MS = 86_400_000;

/** Bars of `symbol` on weekdays from `from` (inclusive) to `to` (exclusive), prices from the day number. */
function weekdayBars(symbol: string, from: string, to: string): Bar[] {
  const bars: Bar[] = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += DAY_MS) {
    const weekday = new Date(t).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    const close = 50 + ((t / DAY_MS) % 100);
    bars.push({
      symbol,
      time: new Date(t),
      open: close,
      high: close + 1,
      low: close - 1,
      close,
      adjClose: close,
      volume: 10,
      source: 'test',
      quality: [],
    });
  }
  return bars;
}

/** The last `lookback` of `bars` at or before `until`, as fetchBars should answer, computed here. */
function expected(bars: readonly Bar[], lookback: number, until?: Date): Bar[] {
  return bars.filter((b) => until === undefined || b.time <= until).slice(-lookback);
}

/** Captures every statement a Kysely instance sends, compiled, so a test can EXPLAIN it. */
function capturing(db: Db): { db: Db; statements: CompiledQuery[] } {
  const statements: CompiledQuery[] = [];
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      statements.push(db.getExecutor().compileQuery(args.node as RootOperationNode, createQueryId()));
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  return { db: db.withPlugin(plugin), statements };
}

describe(`chunk intervals and time-bounded bar fetches (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  const silent = createLogger({ level: 'silent', format: 'json' });

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate market_bars`.execute(database.db);
  });

  /** The migrations' view of the database (they are typed without the tables). */
  const migrationDb = () => database.db as unknown as Kysely<unknown>;

  async function intervals(): Promise<Record<string, number>> {
    const { rows } = await sql<{ table: string; days: number }>`
      select hypertable_name as table, (extract(epoch from time_interval) / 86400)::float8 as days
      from timescaledb_information.dimensions where hypertable_name in ('market_bars', 'prediction_history')
    `.execute(database.db);
    return Object.fromEntries(rows.map((r) => [r.table, r.days]));
  }

  test("0014 makes both hypertables' chunks a year wide; the settings change them and a repeat changes nothing", async () => {
    assert.equal(database.timescale, timescaleTests, 'TimescaleDB is in the test database exactly when SIBYL_TEST_TIMESCALE=1');
    if (!database.timescale) {
      // Nothing to size: no hypertable, and both the migration and the setting are no-ops.
      assert.equal(await applyChunkInterval(database, 'market_bars', 30), undefined);
      await chunkIntervals.down(migrationDb());
      await chunkIntervals.up(migrationDb());
      return;
    }
    assert.deepEqual(await intervals(), { market_bars: 365, prediction_history: 365 });
    assert.equal(await applyChunkInterval(database, 'market_bars', 365), undefined, 'already 365 days: nothing to do');
    assert.equal(await applyChunkInterval(database, 'market_bars', 730), 365);
    const logged: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      format: 'json',
      destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
    });
    await applyHistoryChunkInterval(database, 1, logger);
    await applyHistoryChunkInterval(database, 1, logger);
    assert.deepEqual(await intervals(), { market_bars: 730, prediction_history: 1 });
    assert.deepEqual(
      logged.map((l) => [l.days, l.was, l.msg]),
      [[1, 365, 'history chunk interval set (chunks created from now on)']],
      'logged once: the second start found it set',
    );
    await assert.rejects(applyChunkInterval(database, 'market_bars', 0), RangeError);
    await chunkIntervals.down(migrationDb());
    assert.deepEqual(await intervals(), { market_bars: 7, prediction_history: 7 });
    await chunkIntervals.up(migrationDb());
    assert.deepEqual(await intervals(), { market_bars: 365, prediction_history: 365 });
  });

  test(
    'TimescaleDB created after the migrations made plain tables: nothing to size, nothing fails',
    { skip: !timescaleTests && 'needs TimescaleDB (SIBYL_TEST_TIMESCALE=1)' },
    async () => {
      const late = await createTestDatabase();
      try {
        await runStatement(late.env.DATABASE_URL!, 'drop extension timescaledb');
        const plain = await openDatabase(late.settings, silent);
        await migrateToLatest(plain.db);
        await plain.close();
        await runStatement(late.env.DATABASE_URL!, 'create extension timescaledb');
        const extended = await openDatabase(late.settings, silent);
        try {
          assert.equal(extended.timescale, true);
          assert.equal(await applyChunkInterval(extended, 'market_bars', 30), undefined);
          await applyHistoryChunkInterval(extended, 1, silent);
        } finally {
          await extended.close();
        }
      } finally {
        await late.drop();
      }
    },
  );

  test('HISTORY_CHUNK_DAYS unset: a year for daily markets, a day for the synthetic one; set, it wins', () => {
    assert.equal(historyChunkDays(undefined, 'stored'), 365);
    assert.equal(historyChunkDays(undefined, 'synthetic'), 1);
    assert.equal(historyChunkDays(30, 'synthetic'), 30);
    assert.equal(historyChunkDays(30, 'stored'), 30);
  });

  test('a fetch bounded by time answers as an unbounded one: gaps, series starts, new bars, until', async () => {
    const long = weekdayBars('LONG', '2015-01-01', '2021-01-01');
    // A year-long gap before the last 5 bars: the window of a 60-bar fetch holds only those 5.
    const gapped = [...weekdayBars('GAP', '2015-01-01', '2019-06-01'), ...weekdayBars('GAP', '2020-06-01', '2020-06-08')];
    const young = weekdayBars('YOUNG', '2020-12-01', '2021-01-01'); // fewer bars than asked for
    const bars = new BarsRepository(database.db);
    await bars.upsert([...long, ...gapped, ...young]);
    const all = { LONG: long, GAP: gapped, YOUNG: young };
    const check = async (lookback: number, until?: Date) => {
      const got = await bars.fetchBars(['YOUNG', 'LONG', 'GAP', 'NONE'], { lookback, ...(until && { until }) });
      const want = Object.entries(all)
        .map(([symbol, list]) => [symbol, expected(list, lookback, until)] as const)
        .filter(([, list]) => list.length > 0);
      assert.deepEqual(
        [...got.keys()],
        want.map(([symbol]) => symbol).sort(),
        'symbols with bars, in order; those without (NONE, and YOUNG before it starts) absent',
      );
      for (const [symbol, list] of want)
        assert.deepEqual(got.get(symbol), list, `${symbol}, lookback ${lookback}, until ${until?.toISOString()}`);
    };
    await check(60); // the first fetch of these symbols: no bound yet
    await check(60); // bounded by the newest bars seen
    await check(400);
    await check(60, new Date('2019-03-01'));
    await check(1, new Date('2016-01-01'));
    // Newer bars than any seen: the bound reaches up to them (it has no upper end without `until`).
    const newer = weekdayBars('LONG', '2021-01-01', '2021-03-01');
    await bars.upsert(newer);
    all.LONG = [...long, ...newer];
    await check(60);
    // Every bar replaced by older ones: the estimate is wrong, the answer is not.
    await sql`truncate market_bars`.execute(database.db);
    const old = weekdayBars('LONG', '2001-01-01', '2001-06-01');
    await bars.upsert(old);
    assert.deepEqual((await bars.fetchBars(['LONG'], { lookback: 60 })).get('LONG'), old.slice(-60));
  });

  test(
    'on TimescaleDB a repeated fetch plans only the chunks of its window, not every chunk',
    { skip: !timescaleTests && 'needs TimescaleDB (SIBYL_TEST_TIMESCALE=1)' },
    async () => {
      await new BarsRepository(database.db).upsert(weekdayBars('AAPL', '2001-01-01', '2021-01-01'));
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from show_chunks('market_bars')`.execute(database.db);
      const chunks = rows[0]!.n;
      assert.ok(chunks >= 20 && chunks <= 21, `20 years in yearly chunks: ${chunks}`);
      const captured = capturing(database.db);
      const bars = new BarsRepository(captured.db);
      const plannedChunks = async (statement = captured.statements.at(-1)!) => {
        const { rows: plan } = await database.db.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`explain (costs off) ${statement.sql}`, [...statement.parameters]),
        );
        return new Set(plan.flatMap((line) => line['QUERY PLAN'].match(/_hyper_\d+_\d+_chunk/g) ?? [])).size;
      };
      await bars.fetchBars(['AAPL'], { lookback: 60 });
      assert.equal(await plannedChunks(), chunks, 'the first fetch of a symbol has no bound: every chunk');
      await bars.fetchBars(['AAPL'], { lookback: 60 });
      assert.ok((await plannedChunks()) <= 2, 'the next one: the chunks of its window only');
      await bars.fetchBars(['AAPL'], { lookback: 60, until: new Date('2010-06-01') });
      assert.ok((await plannedChunks()) <= 2, 'with until: the chunks of its window only');
      const sent = captured.statements.length;
      await bars.fetchBars(['AAPL', 'NOPE'], { lookback: 60 });
      assert.equal(captured.statements.length - sent, 2, 'the unknown symbol is read again, alone, without the bound');
      assert.ok((await plannedChunks(captured.statements[sent]!)) <= 2, 'an unknown symbol in the batch does not unbound the others');
    },
  );
});
