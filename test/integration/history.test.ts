import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { HistoryRepository } from '../../src/modules/history/history.repository.js';
import { HISTORY_COLUMNS, historyKey, type HistoryRow } from '../../src/modules/history/history.types.js';
import { HistoryWriter, isRowError } from '../../src/modules/history/history.writer.js';
import { createTestDatabase, stackName, tempDir, timescaleTests, type TestDatabase } from '../helpers/services.js';

const T0 = Date.UTC(2021, 3, 21, 20); // an asOf with an hour in it, so time zones would show

function row(i: number, overrides: Partial<HistoryRow> = {}): HistoryRow {
  return {
    time: new Date(T0 + i * 86_400_000),
    symbol: 'AAPL',
    strategy: 'direction-1d',
    modelVersion: 'v1',
    horizon: '1d',
    probability: 0.61,
    confidence: 0.61,
    signal: 'BUY',
    expectedReturn: null,
    intervalLevel: 0.95,
    intervalLow: 131.5,
    intervalHigh: 140.25,
    featuresHash: `hash-${i}`,
    marketSource: 'stored',
    ...overrides,
  };
}

const silent = createLogger({ level: 'silent', format: 'json' });

describe(`prediction history (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let history: HistoryRepository;

  /** Every stored row as a HistoryRow, in key order. */
  async function stored(): Promise<HistoryRow[]> {
    const rows = await database.db
      .selectFrom('prediction_history')
      .selectAll()
      .orderBy('symbol')
      .orderBy('strategy')
      .orderBy('model_version')
      .orderBy('time')
      .execute();
    return rows.map((r) => ({
      time: r.time,
      symbol: r.symbol,
      strategy: r.strategy,
      modelVersion: r.model_version,
      horizon: r.horizon,
      probability: r.probability,
      confidence: r.confidence,
      signal: r.signal,
      expectedReturn: r.expected_return,
      intervalLevel: r.interval_level,
      intervalLow: r.interval_low,
      intervalHigh: r.interval_high,
      featuresHash: r.features_hash,
      marketSource: r.market_source,
    }));
  }

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
    history = new HistoryRepository(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate prediction_history`.execute(database.db);
  });

  test('the migration creates the key, the read index and (on TimescaleDB) a hypertable', async () => {
    const { rows: indexes } = await sql<{ indexname: string; indexdef: string }>`
      select indexname, indexdef from pg_indexes where tablename = 'prediction_history' order by indexname
    `.execute(database.db);
    assert.equal(database.timescale, timescaleTests, 'TimescaleDB is in the test database exactly when SIBYL_TEST_TIMESCALE=1');
    assert.deepEqual(
      indexes.map((i) => i.indexname),
      // 0004's partial indexes of pending and resolved rows went with the outcome columns (0013);
      // create_hypertable adds its default index on time, which continuous-aggregate refreshes (time
      // ranges over every symbol) use.
      [
        'prediction_history_key',
        'prediction_history_symbol_strategy_time_idx',
        ...(database.timescale ? ['prediction_history_time_idx'] : []),
      ],
    );
    const def = (name: string) => indexes.find((i) => i.indexname === name)!.indexdef;
    if (database.timescale) assert.match(def('prediction_history_time_idx'), /\("?time"? DESC\)/);
    assert.match(def('prediction_history_key'), /UNIQUE.*\(symbol, strategy, model_version, market_source, "?time"?\)/);
    assert.match(def('prediction_history_symbol_strategy_time_idx'), /\(symbol, strategy, market_source, "?time"? DESC\)/);
    // HISTORY_COLUMNS, the one definition of a written row, names every column but its creation time.
    const { rows: columns } = await sql<{ column_name: string }>`
      select column_name from information_schema.columns where table_name = 'prediction_history' and table_schema = current_schema()
    `.execute(database.db);
    assert.deepEqual(
      Object.values(HISTORY_COLUMNS)
        .map((c) => c.column)
        .sort(),
      columns
        .map((c) => c.column_name)
        .filter((name) => name !== 'created_at')
        .sort(),
    );
    if (database.timescale) {
      const { rows } = await sql`select 1 from timescaledb_information.hypertables where hypertable_name = 'prediction_history'`.execute(
        database.db,
      );
      assert.equal(rows.length, 1);
    }
  });

  test('insertMany inserts rows and counts them; values, times and nulls come back exactly', async () => {
    const rows = [
      row(0),
      row(1, { symbol: 'BRK.B', signal: 'SELL', probability: 0.1234567890123, confidence: 1 - 0.1234567890123, expectedReturn: -0.0125 }),
      row(2, { time: new Date(T0 + 123), signal: 'HOLD', probability: 0, confidence: 1, intervalLevel: 0.8 }),
    ];
    assert.equal(await history.insertMany(rows), 3);
    assert.equal(await history.insertMany([]), 0);
    const back = await stored();
    assert.deepEqual(new Set(back.map(historyKey)), new Set(rows.map(historyKey)));
    for (const original of rows)
      assert.deepEqual(
        back.find((r) => historyKey(r) === historyKey(original)),
        original,
      );
    const { rows: extra } = await sql<{ pending: number; resolved: number; fresh: boolean }>`
      select (select count(*) from prediction_outcomes_pending p
               where (p.symbol, p.strategy, p.model_version, p.market_source, p.time,
                      p.probability, p.confidence, p.interval_level, p.interval_low, p.interval_high)
                  in (select symbol, strategy, model_version, market_source, time,
                             probability, confidence, interval_level, interval_low, interval_high from prediction_history))::int as pending,
             (select count(*) from prediction_outcomes)::int as resolved,
             bool_and(created_at > now() - interval '1 minute') as fresh
      from prediction_history
    `.execute(database.db);
    assert.deepEqual(
      extra[0],
      { pending: 3, resolved: 0, fresh: true },
      'every row queued for its outcome, none resolved; created_at defaults to now()',
    );
  });

  test('a key already stored is skipped (count 0), never updated; within one call the first row of a key wins', async () => {
    assert.equal(await history.insertMany([row(0), row(1)]), 2);
    assert.equal(await history.insertMany([row(0, { probability: 0.99, confidence: 0.99 }), row(1)]), 0);
    assert.equal(await history.insertMany([row(1), row(2, { featuresHash: 'first' }), row(2, { featuresHash: 'second' })]), 1);
    // The same prediction from another model version or strategy is a different key.
    assert.equal(await history.insertMany([row(0, { modelVersion: 'v2' }), row(0, { strategy: 'other' })]), 2);
    const back = await stored();
    assert.equal(back.length, 5);
    const { rows: queued } = await sql<{ n: number }>`select count(*)::int as n from prediction_outcomes_pending`.execute(database.db);
    assert.equal(queued[0]!.n, 5, 'a skipped repeat is not queued twice');
    assert.equal(back.find((r) => historyKey(r) === historyKey(row(0)))?.probability, 0.61);
    assert.equal(back.find((r) => historyKey(r) === historyKey(row(2)))?.featuresHash, 'first');
  });

  test('the CHECK constraints refuse bad rows, as errors the writer classifies as row errors', async () => {
    const bad: Array<[constraint: string, change: Partial<HistoryRow>]> = [
      ['prediction_history_probability_unit', { probability: 1.5 }],
      ['prediction_history_probability_unit', { probability: Number.NaN }],
      ['prediction_history_confidence_unit', { confidence: -0.01 }],
      ['prediction_history_signal_known', { signal: 'MAYBE' as never }],
      ['prediction_history_interval_valid', { intervalLevel: 1 }],
      ['prediction_history_interval_valid', { intervalLow: 10, intervalHigh: 9 }],
      ['prediction_history_expected_return_finite', { expectedReturn: Number.POSITIVE_INFINITY }],
    ];
    for (const [constraint, change] of bad) {
      // A good row first: a refused call must not leave it behind either (one statement).
      const error = await history.insertMany([row(0), row(1, change)]).then(
        () => assert.fail(`${JSON.stringify(change)} was accepted`),
        (e: unknown) => e,
      );
      assert.match(String((error as Error).message), new RegExp(constraint));
      assert.equal(isRowError(error), true, `${constraint}: code ${(error as { code?: string }).code}`);
    }
    assert.deepEqual(await stored(), []);
  });

  test('more rows than one statement takes are chunked in one transaction', async () => {
    // Rows a minute apart, not a day: 15,000 days would be 41 years of TimescaleDB chunks, each locked
    // (with its indexes) by the one transaction, in a lock table the whole server shares.
    const minutely = (i: number, symbol: string, overrides: Partial<HistoryRow> = {}) =>
      row(i, { symbol, time: new Date(T0 + i * 60_000), ...overrides });
    const many = Array.from({ length: 25_000 }, (_, i) => minutely(i % 5_000, `S${Math.floor(i / 5_000)}`));
    assert.equal(await history.insertMany(many), 25_000);
    assert.equal(await history.insertMany(many), 0);
    const refused = [...Array.from({ length: 15_000 }, (_, i) => minutely(i, 'NEW')), minutely(0, 'NEW2', { probability: 2 })];
    await assert.rejects(history.insertMany(refused), /prediction_history_probability_unit/);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from prediction_history`.execute(database.db);
    assert.equal(rows[0]?.n, 25_000, 'the refused call left nothing behind, its first chunk included');
    // A bad row in an early chunk: the statements queued behind it fail too (the transaction is
    // aborted), but the error reported is the row's own, which the writer needs to isolate it.
    const early = Array.from({ length: 12_000 }, (_, i) => minutely(i, 'EARLY', i === 3_000 ? { confidence: -1 } : {}));
    await assert.rejects(
      history.insertMany(early),
      (error: unknown) => isRowError(error) && /prediction_history_confidence_unit/.test(String(error)),
    );
    const { rows: after } = await sql<{ n: number }>`select count(*)::int as n from prediction_history`.execute(database.db);
    assert.equal(after[0]?.n, 25_000);
  });

  /**
   * The writer end to end on this engine: any sequence of record() calls — with many repeats, and a
   * recent-key set small enough that repeats also reach the database — followed by close() leaves the
   * table holding exactly the distinct keys recorded, each with the values of its first recording.
   */
  test('property: record() … close() stores each distinct key once, with its first values', async () => {
    // -0 + 0 is 0: -0 and 0 are the same prediction, but pg sends -0 as "0" and deepEqual tells them apart.
    const double = (min: number, max: number) => fc.double({ min, max, noNaN: true }).map((x) => x + 0);
    const recording = fc.record({
      key: fc.record({
        symbol: fc.constantFrom('AAPL', 'MSFT', 'BRK.B'),
        strategy: fc.constantFrom('direction-1d', 'direction-5d'),
        modelVersion: fc.constantFrom('v1', 'v2'),
        time: fc.constantFrom(T0, T0 + 1, T0 + 86_400_000),
      }),
      probability: double(0, 1),
      signal: fc.constantFrom('BUY' as const, 'SELL' as const, 'HOLD' as const),
      expectedReturn: fc.option(double(-1, 1), { nil: null }),
      interval: fc.tuple(double(-1e6, 1e6), double(-1e6, 1e6)),
      featuresHash: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 16 }),
      marketSource: fc.constantFrom('stored', 'synthetic'),
      pause: fc.boolean(),
    });
    const settings = fc.record({
      maxBatchRows: fc.integer({ min: 1, max: 8 }),
      maxBufferRows: fc.integer({ min: 8, max: 16 }),
      recentKeys: fc.integer({ min: 0, max: 6 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(recording, { minLength: 1, maxLength: 4 }), { maxLength: 25 }),
        settings,
        async (calls, options) => {
          await sql`truncate prediction_history`.execute(database.db);
          const spill = tempDir('sibyl-history-it-');
          try {
            const writer = await HistoryWriter.open({
              repository: history,
              logger: silent,
              spillDir: spill.dir,
              flushIntervalMs: 1,
              ...options,
            });
            const first = new Map<string, HistoryRow>();
            for (const call of calls) {
              const rows = call.map(({ key, probability, signal, expectedReturn, interval, featuresHash }): HistoryRow => ({
                ...key,
                time: new Date(key.time),
                horizon: key.strategy.slice(-2),
                probability,
                confidence: Math.max(probability, 1 - probability),
                signal,
                expectedReturn,
                intervalLevel: 0.95,
                intervalLow: Math.min(...interval),
                intervalHigh: Math.max(...interval),
                featuresHash,
                marketSource: 'stored',
              }));
              for (const r of rows) if (!first.has(historyKey(r))) first.set(historyKey(r), r);
              writer.record(rows);
              if (call[0]!.pause) await new Promise((resolve) => setImmediate(resolve));
            }
            await writer.close();
            const back = await stored();
            assert.equal(back.length, first.size);
            for (const r of back) assert.deepEqual(r, first.get(historyKey(r)));
            assert.equal(writer.state.spilledRows, 0, 'with the database up, close() wrote everything');
          } finally {
            spill.remove();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
