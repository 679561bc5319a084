import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { MetricsRepository } from '../../src/modules/metrics/index.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';
import { storeOutcomes } from '../helpers/outcomes.js';

const silent = createLogger({ level: 'silent', format: 'json' });
const DAY = 86_400_000;
const EPS = 1e-15;

/**
 * The pairing SQL of compareModels on a real database: only rows both versions predicted for the same
 * symbol, asOf, strategy and market, with realized outcomes, count; days are UTC days of asOf.
 */
describe(`compareModels pairing SQL (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  const rows: HistoryRow[] = [];
  const outcome = new Map<string, number | null>();

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
    const start = Date.UTC(2023, 2, 1, 20, 0);
    let k = 0;
    const add = (fields: Partial<HistoryRow> & Pick<HistoryRow, 'time' | 'symbol' | 'probability'>, r: number | null) => {
      const featuresHash = `h${k++}`;
      rows.push(recordedPrediction({ featuresHash, ...fields }));
      outcome.set(featuresHash, r);
    };
    for (let d = 0; d < 12; d++) {
      // Day 5 is at 23:59 UTC and day 6 at 00:01 UTC the next day, 2 minutes apart: two UTC days, not one.
      const time = new Date(start + d * DAY + (d === 5 ? 3 * 3_600_000 + 59 * 60_000 : d === 6 ? -20 * 3_600_000 + 60_000 : 0));
      for (const symbol of ['PA', 'PB', 'PC']) {
        const r = ((d * 7 + symbol.charCodeAt(1)) % 5) - 2 || 0.5;
        const pa = ((d * 3 + symbol.charCodeAt(1)) % 10) / 10;
        const pb = ((d * 5 + symbol.charCodeAt(1)) % 9) / 9;
        add({ time, symbol, modelVersion: 'v1', probability: pa }, r);
        add({ time, symbol, modelVersion: 'v2', probability: pb }, r);
      }
      // Noise that must not pair: v1 alone, another market, another strategy, a third version, unresolved.
      add({ time, symbol: 'PD', modelVersion: 'v1', probability: 0.9 }, 1);
      add({ time, symbol: 'PE', modelVersion: 'v1', probability: 0.1, marketSource: 'synthetic' }, 1);
      add({ time, symbol: 'PE', modelVersion: 'v2', probability: 0.9, marketSource: 'synthetic' }, 1);
      add({ time, symbol: 'PA', modelVersion: 'v2', probability: 0.95, marketSource: 'synthetic' }, 1);
      add({ time, symbol: 'PA', modelVersion: 'v3', probability: 0.99 }, -1);
      add({ time, symbol: 'PA', strategy: 'direction-5d', modelVersion: 'v1', horizon: '5d', probability: 0.2 }, 1);
      add({ time, symbol: 'PA', strategy: 'direction-5d', modelVersion: 'v2', horizon: '5d', probability: 0.8 }, 1);
      add({ time, symbol: 'PF', modelVersion: 'v1', probability: 0.3 }, 1);
      add({ time, symbol: 'PF', modelVersion: 'v2', probability: 0.7 }, null);
    }
    await new HistoryRepository(database.db).insertMany(rows);
    const hashes = [...outcome.keys()];
    await storeOutcomes(database.db, {
      from: sql`prediction_history h join unnest(${hashes}::text[], ${hashes.map((h) => outcome.get(h)!)}::float8[]) as o(hash, r)
                on h.features_hash = o.hash`,
      realizedReturn: sql`o.r`,
    });
  });
  after(async () => {
    await database?.close();
    await target?.drop();
  });

  /** The test's own pairing and per-day means, from the rows it inserted. */
  function expected(from?: Date, to?: Date) {
    const key = (r: HistoryRow) => `${r.strategy}|${r.marketSource}|${r.symbol}|${r.time.toISOString()}`;
    const bs = new Map(rows.filter((r) => r.modelVersion === 'v2').map((r) => [key(r), r]));
    const days = new Map<string, { n: number; ba: number; bb: number; la: number; lb: number }>();
    const ll = (p: number, y: number) => {
      const c = Math.min(Math.max(p, EPS), 1 - EPS);
      return -(y * Math.log(c) + (1 - y) * Math.log(1 - c));
    };
    for (const a of rows) {
      if (a.modelVersion !== 'v1' || a.strategy !== 'direction-1d' || a.marketSource !== 'stored') continue;
      if ((from && a.time < from) || (to && a.time > to)) continue;
      const b = bs.get(key(a));
      const r = outcome.get(a.featuresHash);
      if (!b || r === null || outcome.get(b.featuresHash) === null) continue;
      const y = r! > 0 ? 1 : 0;
      const day = a.time.toISOString().slice(0, 10);
      const e = days.get(day) ?? { n: 0, ba: 0, bb: 0, la: 0, lb: 0 };
      e.n++;
      e.ba += (a.probability - y) ** 2;
      e.bb += (b.probability - y) ** 2;
      e.la += ll(a.probability, y);
      e.lb += ll(b.probability, y);
      days.set(day, e);
    }
    return [...days].sort(([x], [y]) => x.localeCompare(y));
  }

  const check = async (from?: Date, to?: Date) => {
    const got = await new MetricsRepository(database.db).pairedDailyLosses({
      strategy: 'direction-1d',
      source: 'stored',
      a: 'v1',
      b: 'v2',
      from,
      to,
    });
    const want = expected(from, to);
    assert.deepEqual(
      got.map((d) => [d.day, d.rows]),
      want.map(([day, e]) => [day, e.n]),
    );
    got.forEach((d, i) => {
      const e = want[i]![1];
      for (const [name, value, sum] of [
        ['brierA', d.brierA, e.ba],
        ['brierB', d.brierB, e.bb],
        ['logLossA', d.logLossA, e.la],
        ['logLossB', d.logLossB, e.lb],
      ] as const) {
        assert.equal(typeof value, 'number', name);
        assert.ok(Math.abs(value - sum / e.n) < 1e-12, `${d.day} ${name}: ${value} vs ${sum / e.n}`);
      }
    });
    return got;
  };

  test('pairs only both versions’ resolved rows of the same symbol, asOf, strategy and market, per UTC day', async () => {
    const got = await check();
    assert.equal(got.length, 12, 'the 23:59 and 00:01 UTC rows are two days');
    assert.ok(
      got.every((d) => d.rows === 3),
      'the three paired symbols each day, none of the noise',
    );
    assert.ok(
      got.some((d) => d.logLossA > 34.5 / 3),
      'a confident miss (p = 0 or 1) costs −ln(1e-15), not infinity',
    );
  });

  test('from and to are inclusive bounds on asOf; a window without rows gives no days', async () => {
    const from = new Date(Date.UTC(2023, 2, 4, 20, 0));
    const to = new Date(Date.UTC(2023, 2, 8, 20, 0));
    const got = await check(from, to);
    assert.equal(got[0]!.day, '2023-03-04');
    assert.equal(got.at(-1)!.day, '2023-03-08');
    assert.deepEqual(await check(new Date('2030-01-01T00:00:00Z')), []);
  });

  test('swapping a and b swaps the columns', async () => {
    const repo = new MetricsRepository(database.db);
    const ab = await repo.pairedDailyLosses({ strategy: 'direction-1d', source: 'stored', a: 'v1', b: 'v2' });
    const ba = await repo.pairedDailyLosses({ strategy: 'direction-1d', source: 'stored', a: 'v2', b: 'v1' });
    assert.deepEqual(
      ba.map((d) => [d.day, d.rows, d.brierB, d.brierA, d.logLossB, d.logLossA]),
      ab.map((d) => [d.day, d.rows, d.brierA, d.brierB, d.logLossA, d.logLossB]),
    );
  });
});
