import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { ExplanationsRepository, type ConfidenceBand } from '../../src/modules/explanations/index.js';
import { HistoryRepository } from '../../src/modules/history/history.repository.js';
import type { HistoryRow } from '../../src/modules/history/history.types.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';
import { storeOutcomes } from '../helpers/outcomes.js';

const T0 = Date.UTC(2021, 0, 4, 21);

/** A recorded prediction; `correct` is stored afterwards the way the outcomes job does (an outcome row). */
function row(i: number, strategy: string, modelVersion: string, confidence: number): HistoryRow {
  return {
    // Three rows a day, the third late in the UTC day: days are UTC dates.
    time: new Date(T0 + Math.floor(i / 3) * 86_400_000 + (i % 3 === 2 ? 2 * 3_600_000 + 59 * 60_000 : 0)),
    symbol: `S${i % 7}`,
    strategy,
    modelVersion,
    horizon: '1d',
    probability: confidence,
    confidence,
    signal: 'BUY',
    expectedReturn: null,
    intervalLevel: 0.95,
    intervalLow: 90,
    intervalHigh: 110,
    featuresHash: `h${i}`,
    marketSource: 'stored',
  };
}

describe(`explanations: realized accuracy evidence by confidence band (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let repository: ExplanationsRepository;
  const written: Array<{ row: HistoryRow; correct: boolean | null }> = [];

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    repository = new ExplanationsRepository(database.db, 'stored');
    const rows: HistoryRow[] = [];
    let i = 0;
    // direction-1d v1: 10 rows at 0.553 (7 right), 4 at 0.559 (1 right), 3 at 1.0 (all right), 5 whose outcome is unknown.
    for (let k = 0; k < 10; k++) rows.push(row(i++, 'direction-1d', 'v1', 0.553));
    for (let k = 0; k < 4; k++) rows.push(row(i++, 'direction-1d', 'v1', 0.559));
    for (let k = 0; k < 3; k++) rows.push(row(i++, 'direction-1d', 'v1', 1));
    for (let k = 0; k < 5; k++) rows.push(row(i++, 'direction-1d', 'v1', 0.553));
    // Other versions and strategies, which must not mix in.
    for (let k = 0; k < 6; k++) rows.push(row(i++, 'direction-1d', 'v2', 0.553));
    for (let k = 0; k < 6; k++) rows.push(row(i++, 'direction-5d', 'v1', 0.553));
    assert.equal(await new HistoryRepository(database.db).insertMany(rows), rows.length);
    written.push(...rows.map((r) => ({ row: r, correct: null as boolean | null })));
    const outcome = (from: number, to: number, correct: boolean) => {
      for (let k = from; k < to; k++) written[k]!.correct = correct;
      return storeOutcomes(database.db, {
        from: sql`prediction_history h where h.features_hash = any(${Array.from({ length: to - from }, (_, k) => `h${from + k}`)}::text[])`,
        realizedReturn: sql`0.01`,
        correct: sql`${correct}`,
      });
    };
    await outcome(0, 7, true);
    await outcome(7, 10, false);
    await outcome(10, 11, true);
    await outcome(11, 14, false);
    await outcome(14, 17, true);
    await outcome(22, 28, true);
    await outcome(28, 34, false);
  });
  after(async () => {
    await database?.close();
    await target?.drop();
  });

  /** The same evidence counted from the rows as the test wrote them, row by row. */
  function naive(band: ConfidenceBand) {
    const perDay = new Map<string, { rows: number; correct: number }>();
    for (const r of written) {
      const bucket = Math.min(99, Math.floor(r.row.confidence * 100));
      if (
        r.correct === null ||
        r.row.strategy !== band.strategy ||
        r.row.modelVersion !== band.version ||
        bucket < band.lo ||
        bucket > band.hi
      )
        continue;
      const day = r.row.time.toISOString().slice(0, 10);
      const d = perDay.get(day) ?? { rows: 0, correct: 0 };
      d.rows++;
      if (r.correct) d.correct++;
      perDay.set(day, d);
    }
    const days = [...perDay.values()];
    const sum = (f: (d: { rows: number; correct: number }) => number) => days.reduce((a, d) => a + f(d), 0);
    return {
      samples: sum((d) => d.rows),
      correct: sum((d) => d.correct),
      days: days.length,
      sumRows2: sum((d) => d.rows ** 2),
      sumCorrect2: sum((d) => d.correct ** 2),
      sumCorrectRows: sum((d) => d.correct * d.rows),
    };
  }

  test('one statement gives, per confidence band, the outcomes, the distinct UTC days behind them and the day sums, leaving unknown outcomes out', async () => {
    const bands: ConfidenceBand[] = [
      { strategy: 'direction-1d', version: 'v1', lo: 55, hi: 55 },
      { strategy: 'direction-1d', version: 'v1', lo: 99, hi: 99 }, // confidence 1 joins the top bucket
      { strategy: 'direction-5d', version: 'v1', lo: 55, hi: 55 },
      { strategy: 'direction-1d', version: 'v1', lo: 50, hi: 99 },
      { strategy: 'direction-1d', version: 'v1', lo: 50, hi: 99 }, // the same band twice: answered twice
      { strategy: 'direction-1d', version: 'v1', lo: 0, hi: 54 },
    ];
    const got = await repository.evidenceInBands(bands);
    assert.equal(got.length, bands.length);
    bands.forEach((band, i) => assert.deepEqual(got[i], naive(band), JSON.stringify(band)));
    assert.deepEqual(got[0], {
      samples: 14,
      correct: 8,
      days: 5,
      sumRows2: 3 * 3 * 4 + 2 * 2,
      sumCorrect2: got[0]!.sumCorrect2,
      sumCorrectRows: got[0]!.sumCorrectRows,
    });
    assert.equal(got[5]!.samples, 0);
  });

  test('a model with no outcomes, or no bands at all, gives zeros / nothing', async () => {
    assert.deepEqual(await repository.evidenceInBands([{ strategy: 'direction-1d', version: 'v9', lo: 0, hi: 99 }]), [
      { samples: 0, correct: 0, days: 0, sumRows2: 0, sumCorrect2: 0, sumCorrectRows: 0 },
    ]);
    assert.deepEqual(await repository.evidenceInBands([]), []);
  });
});
