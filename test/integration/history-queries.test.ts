import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql, type KyselyPlugin } from 'kysely';
import { migrateToLatest, openDatabase, type Database, type Db } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createBarsStoreProvider } from '../../src/infra/market-data/bars-store.js';
import type { Bar, MarketDataProvider } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import {
  applyHistoryRetention,
  HistoryQueryService,
  HistoryReadRepository,
  historyRollupsOf,
  HistoryRepository,
  OutcomesRepository,
  OutcomesService,
  type HistoryRow,
} from '../../src/modules/history/index.js';
import { MetricsRepository, MetricsService } from '../../src/modules/metrics/index.js';
import { binaryMetrics } from '../../src/training/evaluate.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { redoMigrationsFrom, refreshHistoryAggregates } from '../helpers/migrations.js';
import { historyWithOutcomes } from '../helpers/outcomes.js';
import { createTestDatabase, stackName, timescaleTests, type TestDatabase } from '../helpers/services.js';

const silent = createLogger({ level: 'silent', format: 'json' });
const DAY = 86_400_000;
const START = new Date('2024-03-01T00:00:00Z');

/** Counts the statements a Kysely instance executes (raw `sql` ones included). */
function counting(db: Db): { db: Db; count: () => number } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      n++;
      return args.result;
    },
  };
  return { db: db.withPlugin(plugin), count: () => n };
}

/** A history row for the bar `bar`, with a deterministic probability and an interval around its close. */
function rowAt(bar: Bar, strategy: string, i: number, version = 'v1', width = 0.03): HistoryRow {
  const probability = ((i * 37) % 100) / 100 + 0.005; // spread over every calibration bin
  return {
    time: bar.time,
    symbol: bar.symbol,
    strategy,
    modelVersion: version,
    horizon: strategy === 'direction-5d' ? '5d' : '1d',
    probability,
    confidence: Math.max(probability, 1 - probability),
    signal: probability > 0.55 ? 'BUY' : probability < 0.45 ? 'SELL' : 'HOLD',
    expectedReturn: null,
    intervalLevel: 0.95,
    intervalLow: bar.close * (1 - width),
    intervalHigh: bar.close * (1 + width),
    featuresHash: `h${i}`,
    marketSource: 'stored',
  };
}

describe(`realized outcomes, confidence queries and model metrics in SQL (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let writes: HistoryRepository;

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
    writes = new HistoryRepository(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate prediction_history`.execute(database.db);
    await sql`truncate market_bars`.execute(database.db);
  });

  /** Every history row with its realized outcome (null while pending). */
  const stored = () => historyWithOutcomes(database.db);

  /** The expected outcome of a row, computed here from the bars (independently of outcomeOf). */
  function expected(row: HistoryRow, bars: readonly Bar[]) {
    const h = row.strategy === 'direction-5d' ? 5 : 1;
    const i = bars.findIndex((b) => b.time.getTime() === row.time.getTime());
    if (i < 0 || i + h >= bars.length) return { realized_return: null, correct: null, covered: null };
    const r = bars[i + h]!.adjClose / bars[i]!.adjClose - 1;
    const price = bars[i]!.close * (1 + r);
    return {
      realized_return: r,
      correct: row.probability >= 0.5 === r > 0,
      covered: price >= row.intervalLow && price <= row.intervalHigh,
    };
  }

  for (const source of ['synthetic market', 'stored bars'] as const) {
    test(`outcomes from the ${source}: filled in once the horizon has passed, with paging through bars and rows`, async () => {
      const symbols = ['OA', 'OB', 'OC'];
      // Small pages for the synthetic market; the service's defaults (pages of 64, then doubling) for stored bars.
      const historyBars = source === 'stored bars' ? 150 : 60;
      const synthetic = createSyntheticMarket({ symbols, seed: 11, historyBars, startTime: START });
      let market: MarketDataProvider = synthetic;
      if (source === 'stored bars') {
        const bars = [...(await synthetic.fetchBars(symbols, { lookback: historyBars })).values()].flat();
        const repository = new BarsRepository(database.db);
        await repository.upsert(bars);
        market = createBarsStoreProvider(repository);
      }
      const all = await market.fetchBars(symbols, { lookback: historyBars });
      const rows: HistoryRow[] = [];
      for (const symbol of symbols) {
        all.get(symbol)!.forEach((bar, i) => {
          if (i % 2 === 0) rows.push(rowAt(bar, 'direction-1d', i));
          if (i % 3 === 0) rows.push(rowAt(bar, 'direction-5d', i));
        });
      }
      // A row whose asOf is no bar (e.g. the synthetic market of an earlier run): stays pending.
      rows.push({ ...rowAt(all.get('OA')![10]!, 'direction-1d', 99), time: new Date(all.get('OA')![10]!.time.getTime() + 3_600_000) });
      await writes.insertMany(rows);

      // Small pages, so paging back through bars and keyset paging through rows both happen.
      const options = source === 'stored bars' ? { rowsPerQuery: 40 } : { barsPerFetch: 7, rowsPerQuery: 5, symbolsPerFetch: 2 };
      const service = new OutcomesService({
        repository: new OutcomesRepository(database.db, 'stored'),
        market,
        logger: silent,
        ...options,
      });
      const report = await service.resolve();
      const due = rows.filter((r) => expected(r, all.get(r.symbol)!).realized_return !== null);
      assert.equal(report.resolved, due.length);
      assert.equal(report.unmatched, 1);
      assert.equal(report.notDue, rows.length - due.length - 1);
      assert.equal(report.symbols, 3);

      const byKey = new Map(rows.map((r) => [`${r.symbol}|${r.strategy}|${r.time.toISOString()}`, r]));
      for (const s of await stored()) {
        const row = byKey.get(`${s.symbol}|${s.strategy}|${s.time.toISOString()}`)!;
        const e = expected(row, all.get(s.symbol)!);
        if (e.realized_return === null) assert.deepEqual([s.realized_return, s.correct, s.covered], [null, null, null]);
        else {
          assert.ok(Math.abs(s.realized_return! - e.realized_return) < 1e-12, `${s.symbol} ${s.time.toISOString()}`);
          assert.equal(s.correct, e.correct);
          assert.equal(s.covered, e.covered);
        }
      }
      assert.ok(
        (await stored()).some((s) => s.covered === false) && (await stored()).some((s) => s.covered === true),
        'both covered and missed intervals occur',
      );

      // Again: nothing new to do.
      assert.equal((await service.resolve()).resolved, 0);

      if (source === 'synthetic market') {
        // New bars arrive: the rows they make due are resolved on the next pass, for just those symbols.
        for (let i = 0; i < 5; i++) synthetic.advance(new Date(START.getTime() + (i + 1) * DAY));
        const more = await service.resolve({ symbols: ['OB'] });
        const nowBars = (await synthetic.fetchBars(['OB'], { lookback: 100 })).get('OB')!;
        const nowDue = rows.filter((r) => r.symbol === 'OB' && expected(r, nowBars).realized_return !== null).length;
        const wasDue = due.filter((r) => r.symbol === 'OB').length;
        assert.equal(more.resolved, nowDue - wasDue);
        assert.ok(more.resolved > 0);
      }
    });
  }

  test('covered uses the adjusted ratio, so a split inside the horizon does not break it', async () => {
    const bar = (day: number, close: number, adjClose: number): Bar => ({
      symbol: 'SPLT',
      time: new Date(START.getTime() + day * DAY),
      open: close,
      high: close * 1.01, // not flat: a flat bar is a stale vendor bar, which outcomes leave out
      low: close * 0.99,
      close,
      adjClose,
      volume: 1,
      source: 'test',
    });
    // 2-for-1 split between day 0 and day 1: the raw close halves, the adjusted close rises 1%.
    const bars = [bar(0, 200, 100), bar(1, 101, 101)];
    const market: MarketDataProvider = {
      name: 'fixed',
      listSymbols: async () => ['SPLT'],
      fetchBars: async () => new Map([['SPLT', bars]]),
    };
    await writes.insertMany([{ ...rowAt(bars[0]!, 'direction-1d', 1), probability: 0.7, intervalLow: 195, intervalHigh: 205 }]);
    await new OutcomesService({ repository: new OutcomesRepository(database.db, 'stored'), market, logger: silent }).resolve();
    const [s] = await stored();
    assert.ok(Math.abs(s!.realized_return! - 0.01) < 1e-12);
    assert.equal(s!.correct, true);
    assert.equal(s!.covered, true, '200 × 1.01 = 202 is inside [195, 205]; the raw 101 would not be');
  });

  test('confidenceHistory buckets, trends and the last-points loader agree with the rows; the loader is ONE query', async () => {
    const t0 = Date.UTC(2024, 0, 1, 9, 7);
    const rows: HistoryRow[] = [];
    const symbols = ['QA', 'QB', 'QC'];
    for (const [s, symbol] of symbols.entries()) {
      for (let i = 0; i < 200; i++) {
        rows.push(
          recordedPrediction({
            time: new Date(t0 + i * 17 * 60_000),
            symbol,
            modelVersion: i % 4 === 0 ? 'v2' : 'v1',
            probability: 0.3 + (0.4 * ((i * (7 + s)) % 50)) / 50,
            intervalLow: 90,
            intervalHigh: 110,
            featuresHash: `x${i}`,
          }),
        );
      }
    }
    await writes.insertMany(rows);
    const reads = new HistoryReadRepository(database.db, { rollups: historyRollupsOf(database) });
    const market = { listSymbols: async () => [...symbols, 'QD'] }; // QD: known to the market, nothing recorded
    const service = new HistoryQueryService({ repository: reads, market, maxSymbolsPerRequest: 200, servingMarket: 'stored' });

    // Buckets of one hour over a range, computed here from the rows.
    const from = new Date(t0 + 3 * 3_600_000);
    const to = new Date(t0 + 30 * 3_600_000);
    const points = await service.confidenceHistory({ symbol: 'QB', from, to, bucket: '1 hour' });
    const inRange = rows.filter((r) => r.symbol === 'QB' && r.time >= from && r.time <= to);
    const buckets = new Map<number, HistoryRow[]>();
    for (const r of inRange) {
      const start = Math.floor(r.time.getTime() / 3_600_000) * 3_600_000;
      buckets.set(start, [...(buckets.get(start) ?? []), r]);
    }
    assert.equal(points.length, buckets.size);
    for (const point of points) {
      const list = buckets.get(point.time.getTime())!;
      assert.ok(list, `bucket ${point.time.toISOString()} is aligned to the hour`);
      const mean = (f: (r: HistoryRow) => number) => list.reduce((a, r) => a + f(r), 0) / list.length;
      assert.equal(point.count, list.length);
      assert.ok(Math.abs(point.probability - mean((r) => r.probability)) < 1e-12);
      assert.ok(Math.abs(point.confidence - mean((r) => r.confidence)) < 1e-12);
      assert.equal(point.min, Math.min(...list.map((r) => r.confidence)));
      assert.equal(point.max, Math.max(...list.map((r) => r.confidence)));
      assert.equal(point.signal, list.at(-1)!.signal);
    }
    // Only one version, and default range (30 days back from the latest row).
    const v2 = await service.confidenceHistory({ symbol: 'QB', version: 'v2', bucket: '1 day' });
    assert.equal(
      v2.reduce((a, p) => a + p.count, 0),
      rows.filter((r) => r.symbol === 'QB' && r.modelVersion === 'v2').length,
    );
    assert.equal(
      (await service.confidenceHistory({ symbol: 'QB' })).reduce((a, p) => a + p.count, 0),
      200,
      'defaults: everything in the last 30 days',
    );

    // Trends over a 12-hour window ending at each symbol's latest row, for all symbols in one query.
    const trendCount = counting(database.db);
    const trends = await new HistoryQueryService({
      repository: new HistoryReadRepository(trendCount.db, { rollups: historyRollupsOf(database) }),
      market,
      maxSymbolsPerRequest: 200,
      servingMarket: 'stored',
    }).confidenceTrends({
      symbols: [...symbols, 'QD'],
      window: '12 hours',
    });
    assert.equal(trendCount.count(), 1, 'one trends statement for all symbols');
    for (const symbol of symbols) {
      const list = rows.filter((r) => r.symbol === symbol);
      const latest = list.at(-1)!.time.getTime();
      const w = list.filter((r) => r.time.getTime() > latest - 12 * 3_600_000);
      const trend = trends.find((t) => t.symbol === symbol)!;
      const xs = w.map((r) => r.time.getTime() / DAY);
      const ys = w.map((r) => r.confidence);
      const mx = xs.reduce((a, x) => a + x, 0) / xs.length;
      const my = ys.reduce((a, y) => a + y, 0) / ys.length;
      const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      const sd = Math.sqrt(ys.reduce((a, y) => a + (y - my) ** 2, 0) / (ys.length - 1));
      assert.equal(trend.samples, w.length);
      assert.equal(trend.current, w.at(-1)!.confidence);
      assert.ok(Math.abs(trend.mean! - my) < 1e-12);
      assert.equal(trend.min, Math.min(...ys));
      assert.equal(trend.max, Math.max(...ys));
      assert.ok(Math.abs(trend.slope! - slope) < 1e-6 * Math.max(1, Math.abs(slope)), `slope ${trend.slope} vs ${slope}`);
      assert.ok(Math.abs(trend.volatility! - sd) < 1e-9);
    }
    assert.deepEqual(trends.at(-1), {
      symbol: 'QD',
      strategy: 'direction-1d',
      current: null,
      mean: null,
      min: null,
      max: null,
      slope: null,
      volatility: null,
      samples: 0,
    });
    const code = (c: string) => (e: Error & { extensions?: { code?: string } }) => e.extensions?.code === c;
    await assert.rejects(service.confidenceTrends({ symbols: ['QA', 'NOPE'] }), code('UNKNOWN_SYMBOL'));
    await assert.rejects(service.confidenceHistory({ symbol: 'NOPE' }), code('UNKNOWN_SYMBOL'));
    assert.deepEqual(await service.confidenceHistory({ symbol: 'QD' }), [], 'known symbol, nothing recorded: empty, not an error');
    await assert.rejects(service.confidenceHistory({ symbol: 'QA', strategy: 'nope-1d' }), code('UNKNOWN_STRATEGY'));

    // The loader: many keys loaded in one tick → one statement; each gets its last N rows, oldest first.
    const loaderCount = counting(database.db);
    const loaders = new HistoryQueryService({
      repository: new HistoryReadRepository(loaderCount.db, { rollups: historyRollupsOf(database) }),
      market,
      maxSymbolsPerRequest: 200,
      servingMarket: 'stored',
    }).createLoaders();
    const keys = symbols.flatMap((symbol) => [
      { symbol, strategy: 'direction-1d', version: 'v1', source: 'stored', last: 5 },
      { symbol, strategy: 'direction-1d', version: 'v2', source: 'stored', last: 3 },
    ]);
    const results = await Promise.all(
      [...keys, { symbol: 'ZZZ', strategy: 'direction-1d', version: 'v1', source: 'stored', last: 5 }].map((k) => loaders.last.load(k)),
    );
    assert.equal(loaderCount.count(), 1, 'one SQL statement for every key of the request');
    keys.forEach((k, i) => {
      const want = rows.filter((r) => r.symbol === k.symbol && r.modelVersion === k.version).slice(-k.last);
      assert.deepEqual(
        results[i]!.map((p) => [p.time.getTime(), p.confidence, p.signal, p.count]),
        want.map((r) => [r.time.getTime(), r.confidence, r.signal, 1]),
      );
    });
    assert.deepEqual(results.at(-1), []);
  });

  test('modelMetrics equals an independent computation over the same rows (binaryMetrics of src/training/evaluate.ts)', async () => {
    const symbols = ['MA', 'MB'];
    const market = createSyntheticMarket({ symbols, seed: 4, historyBars: 300, startTime: START });
    const all = await market.fetchBars(symbols, { lookback: 300 });
    const rows = symbols.flatMap((s) =>
      all.get(s)!.map((bar, i) => rowAt(bar, 'direction-1d', i + (s === 'MB' ? 13 : 0), i % 5 === 0 ? 'v2' : 'v1', 0.02)),
    );
    await writes.insertMany(rows);
    await new OutcomesService({ repository: new OutcomesRepository(database.db, 'stored'), market, logger: silent }).resolve();

    const service = new MetricsService({
      repository: new MetricsRepository(database.db),
      activeVersion: () => 'v1',
      servingMarket: 'stored',
    });
    const from = new Date(START.getTime() - 200 * DAY);
    for (const filter of [{}, { symbol: 'MB' }, { from }, { version: 'v2', to: new Date(START.getTime() - 50 * DAY) }]) {
      const got = await service.modelMetrics({ strategy: 'direction-1d', ...filter });
      // The same rows, read back as stored, measured in TypeScript.
      const used = (await stored()).filter(
        (r) =>
          r.realized_return !== null &&
          r.model_version === ('version' in filter ? filter.version : 'v1') &&
          (!('symbol' in filter) || r.symbol === filter.symbol) &&
          (!('from' in filter) || r.time >= filter.from!) &&
          (!('to' in filter) || r.time <= filter.to!),
      );
      const p = used.map((r) => r.probability);
      const y = used.map((r): number => (r.realized_return! > 0 ? 1 : 0));
      const want = binaryMetrics(p, y);
      const close = (a: number | null, b: number | null, what: string) => {
        if (a === null || b === null) return assert.equal(a, b, what);
        assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b} (${JSON.stringify(filter)})`);
      };
      assert.equal(got.source, 'realized');
      assert.equal(got.sampleSize, want.sampleSize);
      close(got.accuracy, want.accuracy, 'accuracy');
      close(got.precision, want.precision, 'precision');
      close(got.recall, want.recall, 'recall');
      close(got.f1, want.f1, 'f1');
      close(got.brier, want.brier, 'brier');
      close(got.baselineBrier, want.baseRate * (1 - want.baseRate), 'baselineBrier');
      close(got.baselineBrier, y.reduce((a, yi) => a + (want.baseRate - yi) ** 2, 0) / y.length, 'baselineBrier as a Brier score');
      close(got.logLoss, want.logLoss, 'logLoss');
      close(got.ece, want.ece, 'ece');
      close(got.intervalCoverage, used.filter((r) => r.covered).length / used.length, 'intervalCoverage');
      assert.equal(got.calibration.length, 10);
      got.calibration.forEach((bin, i) => {
        const w = want.calibration[i]!;
        assert.deepEqual([bin.lower, bin.upper, bin.count], [w.lower, w.upper, w.count]);
        close(bin.meanPredicted, w.meanPredicted, `bin ${i} meanPredicted`);
        close(bin.observedRate, w.observedRate, `bin ${i} observedRate`);
      });
      // accuracy is the mean of the stored `correct` column: the two definitions agree.
      close(got.accuracy, used.filter((r) => r.correct).length / used.length, 'accuracy = mean(correct)');
    }

    const none = await service.modelMetrics({ strategy: 'direction-5d' });
    assert.equal(none.sampleSize, 0);
    assert.deepEqual(
      [none.accuracy, none.brier, none.logLoss, none.ece, none.intervalCoverage, none.from, none.to],
      [null, null, null, null, null, null, null],
    );
    assert.ok(none.calibration.every((b) => b.count === 0 && b.meanPredicted === null));
    await assert.rejects(
      service.modelMetrics({ strategy: 'nope-1d' }),
      (e: Error & { extensions?: { code?: string } }) => e.extensions?.code === 'UNKNOWN_STRATEGY',
    );
  });

  test(
    timescaleTests
      ? 'TimescaleDB extras: 0005 makes the continuous aggregates, retention adds and removes its policy'
      : 'TimescaleDB extras are skipped without the extension: 0005 is a no-op, retention is logged as ignored',
    async () => {
      assert.equal(database.timescale, timescaleTests, 'TimescaleDB is in the test database exactly when SIBYL_TEST_TIMESCALE=1');
      const logged: Array<Record<string, unknown>> = [];
      const logger = createLogger({
        level: 'info',
        format: 'json',
        destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
      });
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_matviews where matviewname like 'prediction_history_%'`.execute(database.db);
      assert.equal(rows[0]!.n, 0, 'no plain materialized view on either engine');
      if (!database.timescale) {
        await applyHistoryRetention(database, 30, logger);
        await applyHistoryRetention(database, 0, logger);
        assert.deepEqual(
          logged.map((l) => [l.days, l.msg]),
          [[30, 'HISTORY_RETENTION_DAYS needs TimescaleDB; ignored on this database (history is kept)']],
        );
        return;
      }
      const { rows: views } = await sql<{ view_name: string }>`
        select view_name from timescaledb_information.continuous_aggregates
        where hypertable_name = 'prediction_history' order by view_name
      `.execute(database.db);
      assert.deepEqual(
        views.map((v) => v.view_name),
        ['prediction_history_daily', 'prediction_history_hourly'],
      );
      const retention = async () =>
        (
          await sql<{ drop_after: string }>`
            select config->>'drop_after' as drop_after from timescaledb_information.jobs
            where proc_name = 'policy_retention' and hypertable_name = 'prediction_history'
          `.execute(database.db)
        ).rows.map((r) => r.drop_after);
      await applyHistoryRetention(database, 30, logger);
      assert.deepEqual(await retention(), ['30 days']);
      await applyHistoryRetention(database, 30, logger);
      assert.deepEqual(await retention(), ['30 days'], 'applied again: replaced, not added');
      await applyHistoryRetention(database, 0, logger);
      assert.deepEqual(await retention(), [], '0 removes the policy');
      assert.deepEqual(
        logged.map((l) => [l.days, l.msg]),
        [
          [30, 'history retention policy set'],
          [30, 'history retention policy set'],
        ],
      );
    },
  );

  test('the hourly and daily rollups answer exactly as the raw rows do, after inserts, repeats, deletes and truncates', async (t) => {
    if (database.timescale) return t.skip('the rollup tables and their triggers exist only without TimescaleDB (0005, 0008, 0009)');
    const t0 = Date.UTC(2024, 1, 1, 0, 0);
    const make = (i: number, version: string): HistoryRow =>
      recordedPrediction({
        time: new Date(t0 + i * 7 * 60_000 + (version === 'v2' ? 30_000 : 0)),
        symbol: 'RU',
        modelVersion: version,
        probability: 0.05 + 0.9 * (((i * 7919) % 1000) / 1000),
        intervalLow: 1,
        intervalHigh: 2,
        featuresHash: `r${i}`,
      });
    const rows = Array.from({ length: 1500 }, (_, i) => make(i, i % 3 === 0 ? 'v2' : 'v1'));
    // In three statements, the middle one repeating rows of the first (ON CONFLICT DO NOTHING must not count them twice).
    await writes.insertMany(rows.slice(0, 600));
    await writes.insertMany(rows.slice(300, 1000));
    await writes.insertMany(rows.slice(1000));
    const rollup = new HistoryReadRepository(database.db, { rollups: historyRollupsOf(database) });
    const raw = new HistoryReadRepository(database.db, { rollups: 'none' });
    const compare = async (what: string) => {
      const ranges: Array<[number, number, number, string | undefined]> = [
        [t0, t0 + 7 * 86_400_000, 3_600_000, undefined],
        [t0 + 17 * 60_000, t0 + 5 * 86_400_000 + 41 * 60_000, 3_600_000, 'v1'],
        [t0 - 86_400_000, t0 + 9 * 86_400_000, 86_400_000, undefined],
        [t0 + 95 * 60_000, t0 + 6 * 86_400_000, 6 * 3_600_000, 'v2'],
        // Whole days from the daily rollup, whole hours from the hourly one, partial hours raw, at both ends.
        [t0 + 17 * 60_000, t0 + 6 * 86_400_000 + 5 * 3_600_000 + 41 * 60_000, 86_400_000, undefined],
        [t0 + 3 * 3_600_000, t0 + 5 * 86_400_000, 86_400_000, 'v2'],
        [t0 - 3 * 86_400_000, t0 + 10 * 86_400_000, 2 * 86_400_000, 'v1'],
        [t0 + 86_400_000 + 60_000, t0 + 2 * 86_400_000 - 60_000, 86_400_000, undefined],
      ];
      // Both markets: 0009's roundtrip relabels rows without a stored bar behind them as 'unknown'.
      for (const [from, to, bucketMs, version] of ranges) {
        let points = 0;
        for (const source of ['stored', 'unknown']) {
          const range = {
            symbol: 'RU',
            strategy: 'direction-1d',
            version,
            source,
            from: new Date(from),
            to: new Date(to),
            bucketMs,
          };
          const a = await rollup.confidenceHistory(range);
          const b = await raw.confidenceHistory(range);
          points += b.length;
          assert.equal(a.length, b.length, what);
          a.forEach((p, i) => {
            const q = b[i]!;
            assert.deepEqual(
              [p.time, p.count, p.min, p.max, p.signal],
              [q.time, q.count, q.min, q.max, q.signal],
              `${what}: bucket ${q.time.toISOString()}`,
            );
            assert.ok(Math.abs(p.probability - q.probability) < 1e-12 && Math.abs(p.confidence - q.confidence) < 1e-12, what);
          });
        }
        assert.ok(points > 0, `${what}: no points in range`);
      }
    };
    await compare('after inserts');
    // TimescaleDB: the continuous aggregates hold nothing until refreshed (every bucket was read raw
    // above); materialized, they answer, and rows written after the refresh are read raw until the next.
    await refreshHistoryAggregates(database);
    await compare('after the aggregates were refreshed');
    // 0009 undone and applied again (with everything after it): its down rebuilds the rollups without
    // the market (through 0008's up), its up rebuilds both from the history by market, and the
    // triggers it installs keep both exact; on TimescaleDB, 0012 recreates the aggregates.
    await redoMigrationsFrom(database.db, '0009_market_source');
    await compare('after 0009 rebuilt the rollups');
    await refreshHistoryAggregates(database);
    await writes.insertMany(Array.from({ length: 300 }, (_, i) => make(1500 + i, 'v1')));
    await compare('after more inserts');
    await sql`delete from prediction_history where symbol = 'RU' and time >= ${new Date(t0 + 2 * 86_400_000)}::timestamptz and time < ${new Date(t0 + 2 * 86_400_000 + 150 * 60_000)}::timestamptz`.execute(
      database.db,
    );
    await compare('after a delete through the middle of some hours');
    await refreshHistoryAggregates(database);
    await compare('after a delete, refreshed');
    await sql`truncate prediction_history`.execute(database.db);
    if (database.timescale) {
      const day = {
        symbol: 'RU',
        strategy: 'direction-1d',
        source: 'stored',
        from: new Date(t0),
        to: new Date(t0 + 9 * DAY),
        bucketMs: DAY,
      };
      const { rows: held } = await sql<{ n: number }>`select count(*)::int as n from prediction_history_daily`.execute(database.db);
      assert.ok(held[0]!.n > 0, 'the daily aggregate still holds the truncated rows until its next refresh');
      assert.deepEqual(await rollup.confidenceHistory(day), [], 'but they are not read: truncate invalidated every bucket');
    } else {
      const { rows: left } = await sql<{ n: number }>`
        select (select count(*) from prediction_confidence_hourly)::int + (select count(*) from prediction_confidence_daily)::int as n
      `.execute(database.db);
      assert.equal(left[0]!.n, 0, 'truncate empties both rollups');
    }
  });
});
