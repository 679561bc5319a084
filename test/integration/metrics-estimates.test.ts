import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { MetricsRepository, MetricsService, MIN_ESTIMATE_BLOCKS } from '../../src/modules/metrics/index.js';
import { naiveBootstrap, type NaiveRow } from '../helpers/naive-metrics.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';
import { storeOutcomes } from '../helpers/outcomes.js';

const silent = createLogger({ level: 'silent', format: 'json' });
const DAY = 86_400_000;
const REPLICATES = 60;

/** A small deterministic PRNG of the test's own (LCG), so the data do not depend on the code under test. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 4_294_967_296;
}

interface Stored {
  time: Date;
  model_version: string;
  symbol: string;
  probability: number;
  realized_return: number | null;
  covered: boolean | null;
  interval_level: number;
}

describe(`modelMetrics estimates over rows stored in SQL (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;

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
    await sql`truncate prediction_history`.execute(database.db);
  });

  /**
   * ~14 months of three symbols, with an informative probability (up more often when p is high), ties
   * (p on a 0.01 grid), a month-end day in late UTC hours (calendar months are UTC), 90% intervals
   * (not counted in coverage), another version and unresolved rows that must not count.
   */
  async function seed(): Promise<void> {
    const random = lcg(11);
    const rows: HistoryRow[] = [];
    const outcomes: Array<{ hash: string; r: number | null; covered: boolean | null }> = [];
    const start = Date.UTC(2019, 0, 1, 21, 0);
    for (let d = 0; d < 430; d++) {
      for (const symbol of ['EA', 'EB', 'EC']) {
        const version = d % 9 === 4 ? 'v2' : 'v1';
        const probability = Math.round((0.3 + 0.4 * random()) * 100) / 100;
        const hash = `${symbol}-${d}`;
        const level = d % 7 === 3 ? 0.9 : 0.95;
        rows.push({
          time: new Date(start + d * DAY + (d % 30 === 29 ? 2 * 3_600_000 + 59 * 60_000 : 0)),
          symbol,
          strategy: 'direction-1d',
          modelVersion: version,
          horizon: '1d',
          probability,
          confidence: Math.max(probability, 1 - probability),
          signal: probability > 0.55 ? 'BUY' : probability < 0.45 ? 'SELL' : 'HOLD',
          expectedReturn: null,
          intervalLevel: level,
          intervalLow: 1,
          intervalHigh: 2,
          featuresHash: hash,
          marketSource: 'stored',
        });
        const resolved = d < 420;
        const up = random() < probability + 0.05;
        outcomes.push({ hash, r: resolved ? (up ? 0.01 : -0.01) * (0.5 + random()) : null, covered: resolved ? random() < 0.93 : null });
      }
    }
    await new HistoryRepository(database.db).insertMany(rows);
    await storeOutcomes(database.db, {
      from: sql`prediction_history h
        join unnest(${outcomes.map((o) => o.hash)}::text[], ${outcomes.map((o) => o.r)}::float8[], ${outcomes.map((o) => o.covered)}::boolean[])
          as o(hash, r, covered) on h.features_hash = o.hash`,
      realizedReturn: sql`o.r`,
      covered: sql`o.covered`,
    });
  }

  const stored = async () =>
    (
      await sql<Stored>`
        select h.time, h.model_version, h.symbol, h.probability, o.realized_return, o.covered, h.interval_level
        from prediction_history h
        left join prediction_outcomes o
          on o.symbol = h.symbol and o.strategy = h.strategy and o.model_version = h.model_version
         and o.market_source = h.market_source and o.time = h.time`.execute(database.db)
    ).rows;

  /** The rows as the test reads them: months from JS Dates, outcome and coverage by their own definitions. */
  const naiveRows = (rows: Stored[]): NaiveRow[] =>
    rows.map((r) => ({
      block: new Date(r.time).getUTCFullYear() * 12 + new Date(r.time).getUTCMonth(),
      p: r.probability,
      y: r.realized_return! > 0 ? 1 : 0,
      covered: r.interval_level === 0.95 ? r.covered : null,
    }));

  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9, `${what}: ${a} vs ${b}`);

  test('coverageByYear and coverageByMonth group the 95%-interval outcomes of the measured rows by UTC year and month of asOf', async () => {
    await seed();
    const service = new MetricsService({
      repository: new MetricsRepository(database.db),
      activeVersion: () => 'v1',
      servingMarket: 'stored',
      replicates: REPLICATES,
    });
    const all = await stored();
    for (const filter of [{}, { symbol: 'EC' }]) {
      const got = await service.modelMetrics({ strategy: 'direction-1d', ...filter });
      const used = all.filter(
        (r) =>
          r.realized_return !== null &&
          r.model_version === 'v1' &&
          r.interval_level === 0.95 &&
          r.covered !== null &&
          (!('symbol' in filter) || r.symbol === filter.symbol),
      );
      const group = (chars: number) => {
        const groups = new Map<string, { hit: number; n: number }>();
        for (const r of used) {
          const key = new Date(r.time).toISOString().slice(0, chars);
          const g = groups.get(key) ?? { hit: 0, n: 0 };
          g.hit += r.covered ? 1 : 0;
          g.n += 1;
          groups.set(key, g);
        }
        return [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([period, g]) => ({ period, coverage: g.hit / g.n, samples: g.n }));
      };
      for (const [name, got_, want] of [
        ['year', got.coverageByYear, group(4)],
        ['month', got.coverageByMonth, group(7)],
      ] as const) {
        assert.deepEqual(
          got_.map((c) => [c.period, c.samples]),
          want.map((c) => [c.period, c.samples]),
          name,
        );
        got_.forEach((c, i) => close(c.coverage, want[i]!.coverage, `${name} ${c.period}`));
      }
      // Late-UTC month-end rows fall in their UTC month; years and months both add up to the whole.
      assert.equal(got.coverageByMonth.length, 14); // resolved days 0-419 from 2019-01-01: January 2019 to February 2020
      assert.deepEqual(
        got.coverageByYear.map((c) => c.period),
        ['2019', '2020'],
      );
      const total = got.coverageByYear.reduce((n, c) => n + c.samples, 0);
      assert.equal(total, used.length);
      close(
        got.coverageByYear.reduce((s, c) => s + c.coverage * c.samples, 0) / total,
        got.intervalCoverage!,
        'weighted mean = intervalCoverage',
      );
    }
  });

  test('onVersionCoverage (the sibyl_model_interval_coverage gauges) is told one version over all symbols of the serving market, nothing narrower', async () => {
    await seed();
    const told: Array<[string, string, number, number]> = [];
    const service = new MetricsService({
      repository: new MetricsRepository(database.db),
      activeVersion: () => 'v1',
      servingMarket: 'stored',
      replicates: REPLICATES,
      onVersionCoverage: (...args) => told.push(args),
    });
    const used = (await stored()).filter(
      (r) => r.realized_return !== null && r.model_version === 'v1' && r.interval_level === 0.95 && r.covered !== null,
    );
    const whole = await service.modelMetrics({ strategy: 'direction-1d' });
    assert.equal(told.length, 1);
    const [strategy, version, coverage, samples] = told[0]!;
    assert.deepEqual([strategy, version, samples], ['direction-1d', 'v1', used.length]);
    close(coverage, used.filter((r) => r.covered).length / used.length, 'coverage');
    close(coverage, whole.intervalCoverage!, 'coverage = intervalCoverage');
    await service.modelMetrics({ strategy: 'direction-1d', version: 'v2' });
    assert.equal(told.at(-1)![1], 'v2');
    const before = told.length;
    // One symbol, or another market's predictions, would describe something other than the version as served.
    await service.modelMetrics({ strategy: 'direction-1d', symbol: 'EA' });
    await service.modelMetrics({ strategy: 'direction-1d', source: 'synthetic' });
    assert.equal(told.length, before);
  });

  test('estimates equal a naive block bootstrap of the same rows; every interval holds its value; point values agree with the SQL metrics', async () => {
    await seed();
    const reference = 0.52;
    const service = new MetricsService({
      repository: new MetricsRepository(database.db),
      activeVersion: () => 'v1',
      servingMarket: 'stored',
      trainingBaseRate: (strategy, version) => (strategy === 'direction-1d' && version === 'v1' ? reference : undefined),
      replicates: REPLICATES,
    });
    const all = await stored();
    for (const filter of [{}, { symbol: 'EB' }, { from: new Date(Date.UTC(2019, 3, 1)), to: new Date(Date.UTC(2019, 11, 31, 23, 59)) }]) {
      const got = await service.modelMetrics({ strategy: 'direction-1d', ...filter });
      const used = all.filter(
        (r) =>
          r.realized_return !== null &&
          r.model_version === 'v1' &&
          (!('symbol' in filter) || r.symbol === filter.symbol) &&
          (!('from' in filter) || (new Date(r.time) >= filter.from! && new Date(r.time) <= filter.to!)),
      );
      const rows = naiveRows(used);
      const want = naiveBootstrap(rows, reference, REPLICATES, got.estimation!.seed, 0.95);
      const months = new Set(rows.map((r) => r.block)).size;
      assert.equal(got.estimation!.blocks, months, JSON.stringify(filter));
      assert.equal(got.estimation!.block, 'MONTH');
      assert.equal(got.estimation!.replicates, REPLICATES);
      assert.match(got.estimation!.method, /calendar-block percentile bootstrap/);
      assert.equal(got.estimatesNote, null);
      assert.deepEqual(got.estimates.map((e) => e.metric).sort(), Object.keys(want).sort());
      assert.equal(got.estimates.length, 7);
      for (const e of got.estimates) {
        assert.ok(e.low <= e.value && e.value <= e.high, `${e.metric} [${e.low}, ${e.high}] ∌ ${e.value}`);
        assert.equal(e.level, 0.95);
        const w = want[e.metric]!;
        close(e.value, w.value, `${e.metric} value ${JSON.stringify(filter)}`);
        close(e.low, w.low, `${e.metric} low`);
        close(e.high, w.high, `${e.metric} high`);
      }
      const estimate = (m: string) => got.estimates.find((e) => e.metric === m)!.value;
      close(estimate('accuracy'), got.accuracy!, 'accuracy = the SQL accuracy');
      close(estimate('ece'), got.ece!, 'ece = the SQL ece');
      close(estimate('intervalCoverage'), got.intervalCoverage!, 'coverage = the SQL coverage');
      close(estimate('brierSkillVsTrainingBaseRate'), got.brierSkillVsTrainingBaseRate!, 'skill vs training');
      close(estimate('brierSkillVsHindsightBaseRate'), got.brierSkillVsHindsightBaseRate!, 'skill vs hindsight');
      // The top-level baselines, named for what they are.
      const n = rows.length;
      const base = rows.reduce((a, r) => a + r.y, 0) / n;
      close(got.baseRate!, base, 'baseRate');
      assert.equal(got.trainingBaseRate, reference);
      close(got.hindsightBaseRateBrier!, rows.reduce((a, r) => a + (base - r.y) ** 2, 0) / n, 'hindsight Brier');
      close(got.trainingBaseRateBrier!, rows.reduce((a, r) => a + (reference - r.y) ** 2, 0) / n, 'training base rate Brier');
      close(got.baselineAccuracy!, base, 'always up (reference ≥ 0.5)');
      const skill = got.estimates.find((e) => e.metric === 'brierSkillVsTrainingBaseRate')!;
      assert.equal(
        got.verdict,
        skill.low > 0 ? 'BETTER_THAN_BASE_RATE' : skill.high < 0 ? 'WORSE_THAN_BASE_RATE' : 'NO_BETTER_THAN_BASE_RATE',
      );
    }
    // The data are informative by construction: AUC above ½ with its whole interval.
    const overall = await service.modelMetrics({ strategy: 'direction-1d' });
    assert.ok(overall.estimates.find((e) => e.metric === 'auc')!.low > 0.5);
    // Identical query, identical answer (seeded).
    assert.deepEqual((await service.modelMetrics({ strategy: 'direction-1d' })).estimates, overall.estimates);
  });

  test('without a training base rate, the metrics needing it and the verdict are missing, and the note says why', async () => {
    await seed();
    const service = new MetricsService({
      repository: new MetricsRepository(database.db),
      activeVersion: () => undefined,
      servingMarket: 'stored',
      replicates: REPLICATES,
    });
    const versionless = await service.modelMetrics({ strategy: 'direction-1d' });
    assert.deepEqual(versionless.estimates.map((e) => e.metric).sort(), [
      'accuracy',
      'auc',
      'brierSkillVsHindsightBaseRate',
      'ece',
      'intervalCoverage',
    ]);
    assert.equal(versionless.verdict, null);
    assert.equal(versionless.trainingBaseRate, null);
    assert.equal(versionless.brierSkillVsTrainingBaseRate, null);
    assert.match(versionless.estimatesNote!, /several versions are measured together/);
    const v2 = await service.modelMetrics({ strategy: 'direction-1d', version: 'v2' });
    assert.match(v2.estimatesNote!, /manifest of version v2 states no training base rate/);
  });

  test('too few months, too many rows, or nothing resolved: no estimates, and the reason', async () => {
    await seed();
    const repository = new MetricsRepository(database.db);
    const service = new MetricsService({
      repository: repository,
      activeVersion: () => 'v1',
      servingMarket: 'stored',
      trainingBaseRate: () => 0.5,
      replicates: REPLICATES,
      maxRows: 500,
    });
    const short = await service.modelMetrics({ strategy: 'direction-1d', to: new Date(Date.UTC(2019, MIN_ESTIMATE_BLOCKS - 2, 28)) });
    assert.ok(short.sampleSize > 0);
    assert.deepEqual([short.estimates, short.estimation, short.verdict], [[], null, null]);
    assert.match(
      short.estimatesNote!,
      new RegExp(`span ${MIN_ESTIMATE_BLOCKS - 1} calendar month\\(s\\); intervals need at least ${MIN_ESTIMATE_BLOCKS}`),
    );
    const many = await service.modelMetrics({ strategy: 'direction-1d' });
    assert.ok(many.sampleSize > 500);
    assert.deepEqual(many.estimates, []);
    assert.match(many.estimatesNote!, /more than 500 resolved predictions match \(METRICS_ESTIMATES_MAX_ROWS\)/);
    assert.ok(many.accuracy !== null, 'the point metrics are still there');
    // Bounded: the rows read for estimates stop at the limit.
    assert.equal((await repository.scored({ strategy: 'direction-1d', source: 'stored' }, 501)).length, 501);
    const none = await service.modelMetrics({ strategy: 'direction-5d' });
    assert.deepEqual(
      [none.estimates, none.estimatesNote, none.baseRate, none.baselineAccuracy],
      [[], 'no resolved predictions match', null, null],
    );
  });
});
