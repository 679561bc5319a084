import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { ExplanationsRepository } from '../../src/modules/explanations/index.js';
import { HistoryRepository } from '../../src/modules/history/history.repository.js';
import type { HistoryRow } from '../../src/modules/history/history.types.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

const T0 = Date.UTC(2021, 0, 4, 21);

/** A recorded prediction; `correct` is set afterwards the way the outcomes job does (an UPDATE). */
function row(i: number, strategy: string, modelVersion: string, confidence: number): HistoryRow {
  return {
    time: new Date(T0 + i * 86_400_000),
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
  };
}

describe(`explanations: realized accuracy by confidence (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let repository: ExplanationsRepository;

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    repository = new ExplanationsRepository(database.db);
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
    const outcome = (from: number, to: number, correct: boolean) =>
      sql`update prediction_history set correct = ${correct}, realized_return = 0.01
          where features_hash = any(${Array.from({ length: to - from }, (_, k) => `h${from + k}`)}::text[])`.execute(database.db);
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

  test('one statement counts outcomes per model version and 1%-wide confidence bucket, leaving unknown outcomes out', async () => {
    const buckets = await repository.accuracyByConfidence([
      { strategy: 'direction-1d', version: 'v1' },
      { strategy: 'direction-5d', version: 'v1' },
    ]);
    assert.deepEqual(buckets, [
      { strategy: 'direction-1d', version: 'v1', bucket: 55, samples: 14, correct: 8 },
      { strategy: 'direction-1d', version: 'v1', bucket: 99, samples: 3, correct: 3 }, // confidence 1 joins the top bucket
      { strategy: 'direction-5d', version: 'v1', bucket: 55, samples: 6, correct: 0 },
    ]);
  });

  test('a model with no outcomes, or no models at all, gives no rows', async () => {
    assert.deepEqual(await repository.accuracyByConfidence([{ strategy: 'direction-1d', version: 'v9' }]), []);
    assert.deepEqual(await repository.accuracyByConfidence([]), []);
  });
});
