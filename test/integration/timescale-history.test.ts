import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { migrations } from '../../db/migrations/index.js';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { HistoryReadRepository, HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { MetricsRepository } from '../../src/modules/metrics/index.js';
import { runCliInProcess } from '../helpers/cli.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { refreshHistoryAggregates } from '../helpers/migrations.js';
import { historyWithOutcomes } from '../helpers/outcomes.js';
import { realPostgresUrl, runStatement, tempDir } from '../helpers/services.js';

/**
 * What only TimescaleDB does, on a database of this test's own created with the extension (whatever
 * the rest of the suite runs on): the continuous aggregates read by confidenceHistory (migration 0012)
 * and realized outcomes written while history chunks are compressed (0013). Skipped, saying why, on
 * PGlite and on a server without the extension; the engine-neutral halves of both are tested on every
 * engine in history-queries.test.ts.
 */
const silent = createLogger({ level: 'silent', format: 'json' });
const HOUR = 3_600_000;
const DAY = 86_400_000;

async function whyNoTimescale(): Promise<string | undefined> {
  if (!realPostgresUrl) return 'PGlite has no TimescaleDB (set DATABASE_URL to a server with the extension)';
  const admin = await openDatabase({ kind: 'postgres', url: realPostgresUrl, poolMax: 1 }, silent);
  try {
    const { rows } = await sql<{ version: string | null; preloaded: string }>`
      select (select default_version from pg_available_extensions where name = 'timescaledb') as version,
             current_setting('shared_preload_libraries') as preloaded`.execute(admin.db);
    if (!rows[0]?.version) return 'the server has no timescaledb extension installed';
    if (!rows[0].preloaded.split(',').some((name) => name.trim() === 'timescaledb'))
      return 'timescaledb is not in shared_preload_libraries';
    return undefined;
  } finally {
    await admin.close();
  }
}

const missing = await whyNoTimescale();
/**
 * TimescaleDB's earliest time (4714-11-24 BC): a continuous aggregate whose refresh policy ran before any
 * row existed has its watermark there rather than at -infinity; both mean "nothing materialized".
 */
const TIMESCALE_MIN_MS = -210_866_803_200_000;

describe('TimescaleDB: aggregates read where exact, outcomes beside compressed history', { skip: missing }, () => {
  const name = `sibyl_t_tsdb_${process.pid}_${Date.now().toString(36)}`;
  let url: string;
  let database: Database;
  let writes: HistoryRepository;

  before(async () => {
    await runStatement(realPostgresUrl!, `create database ${name}`);
    const target = new URL(realPostgresUrl!);
    target.pathname = `/${name}`;
    url = target.toString();
    await runStatement(url, 'create extension timescaledb');
    database = await openDatabase({ kind: 'postgres', url, poolMax: 4 }, silent);
    await migrateToLatest(database.db);
    // No job scheduler in this database: the refresh policy 0012 schedules at once would materialize at a
    // moment of its own choosing; the test refreshes when it means to.
    await sql`select _timescaledb_functions.stop_background_workers()`.execute(database.db);
    // Week-wide history chunks (0014 makes them a year wide): the compression tests need data in several chunks.
    await sql`select set_chunk_time_interval('prediction_history', interval '7 days')`.execute(database.db);
    assert.equal(database.timescale, true);
    writes = new HistoryRepository(database.db);
  });
  after(async () => {
    await database?.close();
    if (url) await runStatement(realPostgresUrl!, `drop database if exists ${name} with (force)`);
  });

  test('confidenceHistory reads the aggregates where they are exact and the raw rows elsewhere, always answering as the raw rows do', async () => {
    await sql`truncate prediction_history`.execute(database.db);
    const t0 = Date.UTC(2023, 4, 1);
    const make = (i: number, version = 'v1'): HistoryRow =>
      recordedPrediction({
        time: new Date(t0 + i * 11 * 60_000),
        symbol: 'TSA',
        modelVersion: version,
        probability: 0.05 + 0.9 * (((i * 7919) % 1000) / 1000),
        intervalLow: 1,
        intervalHigh: 2,
        featuresHash: `t${i}`,
      });
    await writes.insertMany(Array.from({ length: 2_000 }, (_, i) => make(i, i % 4 === 0 ? 'v2' : 'v1')));
    const aggregates = new HistoryReadRepository(database.db, { rollups: 'continuous-aggregates' });
    const raw = new HistoryReadRepository(database.db, { rollups: 'none' });
    const day = (from: number, to: number, version?: string) => ({
      symbol: 'TSA',
      strategy: 'direction-1d',
      source: 'stored',
      version,
      from: new Date(from),
      to: new Date(to),
      bucketMs: DAY,
    });
    const ranges = [
      day(t0, t0 + 16 * DAY),
      day(t0 + 5 * HOUR + 17 * 60_000, t0 + 12 * DAY + 3 * HOUR, 'v1'),
      day(t0 - DAY, t0 + 20 * DAY, 'v2'),
    ];
    const same = async (what: string) => {
      for (const range of ranges) {
        for (const bucketMs of [DAY, HOUR, 6 * HOUR]) {
          const a = await aggregates.confidenceHistory({ ...range, bucketMs });
          const b = await raw.confidenceHistory({ ...range, bucketMs });
          assert.equal(a.length, b.length, what);
          a.forEach((p, i) => {
            const q = b[i]!;
            assert.deepEqual(
              [p.time, p.count, p.min, p.max, p.signal],
              [q.time, q.count, q.min, q.max, q.signal],
              `${what}: ${q.time.toISOString()}`,
            );
            assert.ok(Math.abs(p.probability - q.probability) < 1e-12 && Math.abs(p.confidence - q.confidence) < 1e-12, what);
          });
        }
      }
    };
    /** Where the daily aggregate is not exact, as [start, end) in ms (±Infinity for no bound). */
    const unmaterialized = async () =>
      (
        await sql<{ start: number; end: number }>`
          select extract(epoch from lower(s))::float8 * 1000 as start, extract(epoch from upper(s))::float8 * 1000 as end
          from unnest(prediction_history_unmaterialized('prediction_history_daily'::regclass, interval '1 day')) as s`.execute(database.db)
      ).rows.map((r) => [r.start <= TIMESCALE_MIN_MS ? -Infinity : r.start, r.end]);

    await same('never refreshed');
    assert.deepEqual(await unmaterialized(), [[-Infinity, Infinity]], 'nothing materialized: all raw');

    await refreshHistoryAggregates(database);
    const watermark = Math.floor((t0 + 1_999 * 11 * 60_000) / DAY) * DAY + DAY;
    assert.deepEqual(await unmaterialized(), [[watermark, Infinity]], 'refreshed: raw past the watermark only');
    await same('refreshed');

    // Proof that a refreshed day is read from the aggregate: a materialized bucket altered behind
    // TimescaleDB's back shows through (a read of the raw rows would not see it) …
    const { rows: view } = await sql<{ schema: string; table: string }>`
      select materialization_hypertable_schema as schema, materialization_hypertable_name as table
      from timescaledb_information.continuous_aggregates where view_name = 'prediction_history_daily'`.execute(database.db);
    const altered = new Date(t0 + 3 * DAY);
    await sql`update ${sql.id(view[0]!.schema, view[0]!.table)} set count = count + 1000 where bucket = ${altered}::timestamptz and model_version = 'v1'`.execute(
      database.db,
    );
    const read = async () =>
      (await aggregates.confidenceHistory(day(t0, t0 + 16 * DAY))).find((p) => p.time.getTime() === altered.getTime())!;
    const truth = (await raw.confidenceHistory(day(t0, t0 + 16 * DAY))).find((p) => p.time.getTime() === altered.getTime())!;
    assert.equal((await read()).count, truth.count + 1000, 'the altered daily bucket is what was read');
    // … and a row written into that day since the refresh makes the day stale: it is then read from the
    // hourly aggregate and the raw hour the row fell in, so the altered daily row is no longer used.
    await writes.insertMany([{ ...make(99_999), time: new Date(altered.getTime() + 5 * HOUR + 1_234) }]);
    assert.deepEqual(await unmaterialized(), [
      [altered.getTime(), altered.getTime() + DAY],
      [watermark, Infinity],
    ]);
    assert.equal((await read()).count, truth.count + 1, 'the stale day comes from elsewhere, with the new row');
    await same('a late row since the refresh');

    await sql`delete from prediction_history where time >= ${new Date(t0 + 7 * DAY + 30 * 60_000)}::timestamptz and time < ${new Date(t0 + 7 * DAY + 5 * HOUR)}::timestamptz`.execute(
      database.db,
    );
    await same('a delete since the refresh');
    await sql`select compress_chunk(c) from show_chunks('prediction_history') c`.execute(database.db);
    await same('history compressed');
    await refreshHistoryAggregates(database);
    await same('refreshed again');
  });

  test('npm run outcomes resolves predictions whose history chunks are compressed, and leaves every chunk compressed', async () => {
    await sql`truncate prediction_history`.execute(database.db);
    await sql`truncate market_bars`.execute(database.db);
    // Predictions made from bars of 2020, as from the shipped CSVs: their chunks are long past the
    // compression policy's 90 days.
    const symbols = ['CPA', 'CPB'];
    const market = createSyntheticMarket({ symbols, seed: 5, historyBars: 80, startTime: new Date('2020-06-01T00:00:00Z') });
    const bars = await market.fetchBars(symbols, { lookback: 80 });
    await new BarsRepository(database.db).upsert([...bars.values()].flat());
    const rows: HistoryRow[] = [];
    for (const symbol of symbols) {
      bars.get(symbol)!.forEach((bar, i) => {
        const probability = 0.2 + 0.6 * (((i * 37) % 100) / 100);
        for (const strategy of ['direction-1d', 'direction-5d'] as const)
          rows.push(
            recordedPrediction({
              time: bar.time,
              symbol,
              strategy,
              horizon: strategy === 'direction-5d' ? '5d' : '1d',
              probability,
              intervalLow: bar.close * 0.97,
              intervalHigh: bar.close * 1.03,
              featuresHash: `c${i}`,
            }),
          );
      });
    }
    assert.equal(await writes.insertMany(rows), rows.length);
    await sql`select compress_chunk(c, if_not_compressed => true) from show_chunks('prediction_history') c`.execute(database.db);
    const chunks = async () =>
      (
        await sql<{ total: number; compressed: number }>`
          select count(*)::int as total, count(*) filter (where is_compressed)::int as compressed
          from timescaledb_information.chunks where hypertable_name = 'prediction_history'`.execute(database.db)
      ).rows[0]!;
    const before = await chunks();
    assert.ok(before.total > 1 && before.compressed === before.total, `every history chunk compressed (${JSON.stringify(before)})`);

    // TimescaleDB's limit on rows decompressed by one statement, at its tightest: the UPDATE of history
    // rows that outcomes used to be is refused, which is the failure this design removes.
    await sql`alter database ${sql.id(name)} set timescaledb.max_tuples_decompressed_per_dml_transaction = 1`.execute(database.db);
    const limited = await openDatabase({ kind: 'postgres', url, poolMax: 1 }, silent);
    try {
      await assert.rejects(
        sql`update prediction_history set features_hash = features_hash where symbol = 'CPA'`.execute(limited.db),
        /decompression limit/,
      );
    } finally {
      await limited.close();
    }

    const data = tempDir();
    try {
      const run = await runCliInProcess('outcomes', [], { DATABASE_URL: url, DATA_DIR: data.dir, LOG_LEVEL: 'warn' });
      assert.equal(run.code, 0, run.stderr);
      const due = rows.filter((r) => expectedOutcome(r, bars.get(r.symbol)!) !== null);
      assert.match(run.stdout, new RegExp(`\\n\\s*2\\s+${rows.length}\\s+${due.length}\\s+${rows.length - due.length}\\s`));

      const stored = await historyWithOutcomes(database.db);
      assert.equal(stored.length, rows.length);
      for (const s of stored) {
        const row = rows.find((r) => r.symbol === s.symbol && r.strategy === s.strategy && r.time.getTime() === s.time.getTime())!;
        const want = expectedOutcome(row, bars.get(s.symbol)!);
        if (want === null) assert.deepEqual([s.realized_return, s.correct, s.covered], [null, null, null]);
        else {
          assert.ok(Math.abs(s.realized_return! - want.realizedReturn) < 1e-12, `${s.symbol} ${s.strategy} ${s.time.toISOString()}`);
          assert.deepEqual([s.correct, s.covered], [want.correct, want.covered]);
        }
      }
      assert.deepEqual(await chunks(), before, 'no chunk was decompressed');
      const again = await runCliInProcess('outcomes', [], { DATABASE_URL: url, DATA_DIR: data.dir, LOG_LEVEL: 'warn' });
      assert.match(again.stdout, new RegExp(`\\n\\s*2\\s+${rows.length - due.length}\\s+0\\s`), 'a second run finds only the rows not due');

      // And metrics read the compressed predictions joined to their outcomes.
      const metrics = await new MetricsRepository(database.db).realized({ strategy: 'direction-1d', source: 'stored' });
      assert.equal(metrics.sampleSize, due.filter((r) => r.strategy === 'direction-1d').length);
    } finally {
      await sql`alter database ${sql.id(name)} reset timescaledb.max_tuples_decompressed_per_dml_transaction`.execute(database.db);
      data.remove();
    }
  });

  test('0012 and 0013 step down and up again on TimescaleDB with compressed history, keeping every outcome and queued row', async () => {
    const snapshot = async () => ({
      outcomes: (
        await sql<{ key: string }>`
          select symbol || strategy || model_version || market_source || time::text || realized_return::text || correct::text || coalesce(covered::text, '-') as key
          from prediction_outcomes order by 1`.execute(database.db)
      ).rows.map((r) => r.key),
      pending: (
        await sql<{ key: string }>`
          select symbol || strategy || model_version || market_source || time::text || probability::text as key
          from prediction_outcomes_pending order by 1`.execute(database.db)
      ).rows.map((r) => r.key),
    });
    const before = await snapshot();
    assert.ok(before.outcomes.length > 0 && before.pending.length > 0, 'the previous test left outcomes and pending rows');
    const migrationDb = database.db as unknown as Kysely<unknown>;

    await migrations['0013_outcomes_table']!.down!(migrationDb);
    const { rows: back } = await sql<{ resolved: number; pending: number }>`
      select count(*) filter (where realized_return is not null)::int as resolved, count(*) filter (where realized_return is null)::int as pending
      from prediction_history`.execute(database.db);
    assert.deepEqual(
      back[0],
      { resolved: before.outcomes.length, pending: before.pending.length },
      'down puts every outcome back on its row',
    );
    await migrations['0012_history_aggregates_latest_signal']!.down!(migrationDb);
    const { rows: columns } = await sql<{ n: number }>`
      select count(*)::int as n from information_schema.columns where table_name = 'prediction_history_daily' and column_name = 'last_signal'`.execute(
      database.db,
    );
    assert.equal(columns[0]!.n, 0, "0012's down leaves 0009's aggregates, without the latest signal");

    await migrations['0012_history_aggregates_latest_signal']!.up(migrationDb);
    await migrations['0013_outcomes_table']!.up(migrationDb);
    assert.deepEqual(await snapshot(), before, 'up again: the same outcomes and queue');
    await refreshHistoryAggregates(database);
    const { rows: signals } = await sql<{ n: number }>`select count(last_signal)::int as n from prediction_history_daily`.execute(
      database.db,
    );
    assert.ok(signals[0]!.n > 0, 'the rebuilt aggregates carry the latest signal');
  });
});

/** The outcome a row should get from its symbol's bars (computed here, independently of outcomeOf), or null if not due. */
function expectedOutcome(row: HistoryRow, bars: readonly Bar[]) {
  const h = row.strategy === 'direction-5d' ? 5 : 1;
  const i = bars.findIndex((b) => b.time.getTime() === row.time.getTime());
  if (i < 0 || i + h >= bars.length) return null;
  const realizedReturn = bars[i + h]!.adjClose / bars[i]!.adjClose - 1;
  const price = bars[i]!.close * (1 + realizedReturn);
  return {
    realizedReturn,
    correct: row.probability >= 0.5 === realizedReturn > 0,
    covered: price >= row.intervalLow && price <= row.intervalHigh,
  };
}
