import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { manifestSchema, type Manifest } from '../../src/domain/manifest.js';
import { binaryMetrics } from '../../src/training/evaluate.js';
import {
  ConfidenceHistoryDocument,
  ConfidenceTrendsDocument,
  ModelMetricsDocument,
  OfflineEstimatesDocument,
  PredictionsWithHistoryDocument,
  StrategiesDocument,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, postQuery } from '../helpers/graphql.js';
import { REPO_MODELS } from '../helpers/models.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { historyWithOutcomes } from '../helpers/outcomes.js';
import { stackName } from '../helpers/services.js';

const SYMBOLS = ['E01', 'E02', 'E03', 'E04'];
const START = new Date('2024-06-01T00:00:00Z');

/**
 * Confidence history, trends, Prediction.history and modelMetrics through the real gateway (HTTP,
 * Apollo, resolvers, loaders, SQL), over stored bars, with history rows recorded for past bars so
 * outcomes exist.
 */
const readManifest = (strategy: string, version: string): Manifest =>
  manifestSchema.parse(JSON.parse(readFileSync(path.join(REPO_MODELS, strategy, version, 'manifest.json'), 'utf8')));

describe(`confidence history and model metrics over GraphQL (${stackName})`, () => {
  let server: TestGateway;
  let bars: Map<string, Bar[]>;
  const past: HistoryRow[] = [];

  before(async () => {
    const market = createSyntheticMarket({ symbols: SYMBOLS, seed: 9, historyBars: 160, startTime: START });
    bars = await market.fetchBars(SYMBOLS, { lookback: 160 });
    server = await startTestGateway({ HISTORY_FLUSH_INTERVAL_MS: '50', OUTCOMES_INTERVAL_MS: '0' }, { bars: [...bars.values()].flat() });
    // What earlier runs of v1 would have recorded for the 40 bars before the newest one.
    for (const symbol of SYMBOLS) {
      const list = bars.get(symbol)!;
      list.slice(-41, -1).forEach((bar, i) => {
        past.push(
          recordedPrediction({
            time: bar.time,
            symbol,
            probability: 0.2 + (0.6 * (((i + symbol.charCodeAt(2)) * 7) % 40)) / 40,
            intervalLow: bar.close * 0.98,
            intervalHigh: bar.close * 1.02,
            featuresHash: `past-${i}`,
          }),
        );
      });
    }
    await new HistoryRepository(server.gateway.database.db).insertMany(past);
  });
  after(async () => server?.close());

  const codeOf = (errors: ReadonlyArray<{ extensions?: Record<string, unknown> }> | undefined) => errors?.[0]?.extensions?.code;

  test('Prediction.history: the last N recorded predictions of each symbol, oldest first, the served one included once flushed', async () => {
    const first = await execute(server.url, PredictionsWithHistoryDocument, { symbols: SYMBOLS, last: 3 });
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    for (const p of first.data!.predictions) {
      const want = past.filter((r) => r.symbol === p!.symbol).slice(-3);
      assert.deepEqual(
        p!.history.map((h) => [h.time, h.confidence, h.count, h.min, h.max]),
        want.map((r) => [r.time.toISOString(), r.confidence, 1, r.confidence, r.confidence]),
      );
    }
    assert.equal(await server.gateway.history.flush(), true);
    const second = await execute(server.url, PredictionsWithHistoryDocument, { symbols: SYMBOLS }); // default last: 20
    for (const p of second.data!.predictions) {
      assert.equal(p!.history.length, 20);
      assert.deepEqual(p!.history.at(-1)!.time, p!.asOf, 'the served prediction is the newest point');
      assert.equal(p!.history.at(-1)!.confidence, p!.confidence);
      assert.deepEqual(
        p!.history.at(-2)!.time,
        past
          .filter((r) => r.symbol === p!.symbol)
          .at(-1)!
          .time.toISOString(),
      );
    }
    const explicitNull = await execute(server.url, PredictionsWithHistoryDocument, { symbols: ['E01'], last: null });
    assert.equal(explicitNull.data!.predictions[0]!.history.length, 20, 'last: null means the default');
  });

  test('Prediction.history refuses last outside 1..1000', async () => {
    // A lean selection: `last` multiplies the query's cost, and a rich one at 1001 is refused earlier,
    // by the cost limit (QUERY_TOO_COMPLEX), before arguments are validated.
    for (const last of [0, 1001]) {
      const { errors } = await postQuery(server.url, 'query($last: Int) { prediction(symbol: "E01") { history(last: $last) { time } } }', {
        last,
      });
      assert.equal(codeOf(errors), 'BAD_USER_INPUT', JSON.stringify(errors));
      assert.match(errors![0]!.message, /between 1 and 1000/);
    }
    const rich = await execute(server.url, PredictionsWithHistoryDocument, { symbols: ['E01'], last: 5_000 });
    assert.ok(['BAD_USER_INPUT', 'QUERY_TOO_COMPLEX'].includes(String(codeOf(rich.errors))), JSON.stringify(rich.errors));
  });

  test('confidenceHistory buckets by day; defaults reach back 30 days from the latest recorded prediction', async () => {
    const { data, errors } = await execute(server.url, ConfidenceHistoryDocument, { symbol: 'E02', bucket: '1 day', version: 'v1' });
    assert.equal(errors, undefined, JSON.stringify(errors));
    // Everything recorded for E02: the past rows and the predictions served by the test before.
    const rows = await server.gateway.database.db
      .selectFrom('prediction_history')
      .selectAll()
      .where('symbol', '=', 'E02')
      .where('strategy', '=', 'direction-1d')
      .orderBy('time')
      .execute();
    const latest = rows.at(-1)!.time.getTime();
    const want = rows.filter((r) => r.time.getTime() >= latest - 30 * 86_400_000);
    assert.ok(want.length > 10 && want.length < rows.length);
    assert.deepEqual(
      data!.confidenceHistory.map((p) => [p.time, p.count, p.signal]),
      want.map((r) => [r.time.toISOString(), 1, r.signal]),
    );
    const weekly = await execute(server.url, ConfidenceHistoryDocument, {
      symbol: 'E02',
      bucket: '1 week',
      from: rows[0]!.time.toISOString(),
      to: new Date(latest).toISOString(),
      version: 'v1',
    });
    assert.equal(
      weekly.data!.confidenceHistory.reduce((a, p) => a + p.count, 0),
      rows.length,
    );
  });

  test('confidenceHistory failure paths: bad bucket, from > to, too many buckets, unknown strategy, unknown symbol', async () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ symbol: 'E01', bucket: '5 fortnights' }, 'BAD_USER_INPUT', /not a time span/],
      [{ symbol: 'E01', bucket: '1 month' }, 'BAD_USER_INPUT', /second, minute, hour, day, week/],
      [{ symbol: 'E01', bucket: '0 minutes' }, 'BAD_USER_INPUT', /at least 1/],
      [{ symbol: 'E01', from: '2024-05-02T00:00:00Z', to: '2024-05-01T00:00:00Z' }, 'BAD_USER_INPUT', /after/],
      [{ symbol: 'E01', from: '2023-01-01T00:00:00Z', to: '2024-01-01T00:00:00Z', bucket: '5 minutes' }, 'BAD_USER_INPUT', /at most 10000/],
      [{ symbol: 'E01', strategy: 'nope-1d' }, 'UNKNOWN_STRATEGY', /nope-1d/],
      [{ symbol: 'NOPE' }, 'UNKNOWN_SYMBOL', /NOPE/],
      [{ symbol: 'lower' }, 'BAD_USER_INPUT', /symbol/],
    ];
    for (const [variables, code, message] of cases) {
      const { data, errors } = await execute(server.url, ConfidenceHistoryDocument, variables as { symbol: string });
      assert.equal(codeOf(errors), code, `${JSON.stringify(variables)}: ${JSON.stringify(errors)}`);
      assert.match(errors![0]!.message, message);
      assert.equal(data, null);
    }
    const tooMany = await execute(server.url, ConfidenceHistoryDocument, {
      symbol: 'E01',
      from: '2023-01-01T00:00:00Z',
      to: '2024-01-01T00:00:00Z',
      bucket: '5 minutes',
    });
    assert.deepEqual(tooMany.errors![0]!.extensions!.limit, 10_000);
  });

  test('confidenceTrends: one entry per symbol asked, in order; unknown symbols and strategies refused', async () => {
    const { data, errors } = await execute(server.url, ConfidenceTrendsDocument, { symbols: ['E03', 'E01'], window: '10 days' });
    assert.equal(errors, undefined, JSON.stringify(errors));
    assert.deepEqual(
      data!.confidenceTrends.map((t) => t.symbol),
      ['E03', 'E01'],
    );
    for (const trend of data!.confidenceTrends) {
      const stored = await server.gateway.database.db
        .selectFrom('prediction_history')
        .select(['time', 'confidence'])
        .where('symbol', '=', trend.symbol)
        .where('strategy', '=', 'direction-1d')
        .orderBy('time')
        .execute();
      const latest = stored.at(-1)!.time.getTime();
      const w = stored.filter((r) => r.time.getTime() > latest - 10 * 86_400_000);
      assert.equal(trend.samples, w.length);
      assert.equal(trend.current, w.at(-1)!.confidence);
      assert.equal(trend.max, Math.max(...w.map((r) => r.confidence)));
      assert.equal(typeof trend.slope, 'number');
    }
    assert.equal(codeOf((await execute(server.url, ConfidenceTrendsDocument, { symbols: ['E01', 'NOPE'] })).errors), 'UNKNOWN_SYMBOL');
    assert.equal(
      codeOf((await execute(server.url, ConfidenceTrendsDocument, { symbols: ['E01'], strategy: 'nope-1d' })).errors),
      'UNKNOWN_STRATEGY',
    );
    assert.equal(
      codeOf((await execute(server.url, ConfidenceTrendsDocument, { symbols: ['E01'], window: 'a while' })).errors),
      'BAD_USER_INPUT',
    );
  });

  test('modelMetrics after the outcome pass equals binaryMetrics over the same stored rows; offline metrics say so', async () => {
    const empty = await execute(server.url, ModelMetricsDocument, { strategy: 'direction-1d' });
    assert.equal(empty.errors, undefined, JSON.stringify(empty.errors));
    assert.equal(empty.data!.modelMetrics.sampleSize, 0, 'nothing resolved yet: sampleSize 0, not an error');
    assert.equal(empty.data!.modelMetrics.accuracy, null);

    const report = await server.gateway.outcomes.resolve();
    assert.equal(report.resolved, past.length, 'every past row has its next bar stored');

    for (const variables of [{ strategy: 'direction-1d' }, { strategy: 'direction-1d', version: 'v1', symbol: 'E04' }]) {
      const { data, errors } = await execute(server.url, ModelMetricsDocument, variables);
      assert.equal(errors, undefined, JSON.stringify(errors));
      const m = data!.modelMetrics;
      const rows = (await historyWithOutcomes(server.gateway.database.db, sql`o.realized_return is not null`)).filter(
        (r) => r.model_version === 'v1' && (!('symbol' in variables) || r.symbol === variables.symbol),
      );
      const want = binaryMetrics(
        rows.map((r) => r.probability),
        rows.map((r): number => (r.realized_return! > 0 ? 1 : 0)),
      );
      assert.equal(m.source, 'realized');
      assert.equal(m.sampleSize, want.sampleSize);
      for (const key of ['accuracy', 'precision', 'recall', 'f1', 'brier', 'logLoss', 'ece'] as const) {
        assert.ok(Math.abs((m[key] ?? NaN) - (want[key] ?? NaN)) < 1e-9, `${key}: ${m[key]} vs ${want[key]}`);
      }
      assert.ok(Math.abs(m.baselineBrier! - want.baseRate * (1 - want.baseRate)) < 1e-12);
      assert.equal(m.intervalCoverage, rows.filter((r) => r.covered).length / rows.length);
      assert.deepEqual(
        m.calibration.map((b) => b.count),
        want.calibration.map((b) => b.count),
      );
      assert.equal(
        m.from,
        rows
          .map((r) => r.time)
          .sort((a, b) => a.getTime() - b.getTime())[0]!
          .toISOString(),
      );
    }

    const unknown = await execute(server.url, ModelMetricsDocument, { strategy: 'nope-1d' });
    assert.equal(codeOf(unknown.errors), 'UNKNOWN_STRATEGY');
    const backwards = await execute(server.url, ModelMetricsDocument, {
      strategy: 'direction-1d',
      from: '2024-02-01T00:00:00Z',
      to: '2024-01-01T00:00:00Z',
    });
    assert.equal(codeOf(backwards.errors), 'BAD_USER_INPUT');

    const { data } = await execute(server.url, StrategiesDocument);
    for (const s of data!.strategies) assert.equal(s.activeVersion.offlineMetrics?.source, 'offline');
  });

  test('modelMetrics names its baselines and says why a short history has no intervals; offline metrics carry the manifest’s estimates', async () => {
    await server.gateway.outcomes.resolve();
    const { data, errors } = await execute(server.url, ModelMetricsDocument, { strategy: 'direction-1d' });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const m = data!.modelMetrics;
    const manifest = readManifest('direction-1d', 'v1');
    assert.equal(
      m.trainingBaseRate,
      manifest.offlineMetrics.trainingBaseRate,
      'the active version’s training base rate, from its manifest',
    );
    const r = m.trainingBaseRate!;
    const b = m.baseRate!;
    assert.ok(Math.abs(m.trainingBaseRateBrier! - (r * r - 2 * r * b + b)) < 1e-12);
    assert.ok(Math.abs(m.hindsightBaseRateBrier! - b * (1 - b)) < 1e-12);
    assert.equal(m.baselineBrier, m.hindsightBaseRateBrier, 'realized, the deprecated baselineBrier is the hindsight one');
    assert.ok(Math.abs(m.brierSkillVsTrainingBaseRate! - (1 - m.brier! / m.trainingBaseRateBrier!)) < 1e-12);
    // 40 daily rows span 2-3 calendar months: too few blocks to resample, and the answer says so.
    assert.deepEqual([m.estimates, m.estimation, m.verdict], [[], null, null]);
    assert.match(m.estimatesNote!, /calendar month\(s\); intervals need at least 6/);

    const offline = await execute(server.url, OfflineEstimatesDocument);
    assert.equal(offline.errors, undefined, JSON.stringify(offline.errors));
    for (const s of offline.data!.strategies) {
      const o = s.activeVersion.offlineMetrics!;
      const stored = readManifest(s.name, s.activeVersion.version).offlineMetrics;
      assert.deepEqual(o.estimates, stored.estimates);
      assert.equal(o.estimates.length, 7);
      for (const e of o.estimates) assert.ok(e.low <= e.value && e.value <= e.high, `${s.name} ${e.metric}`);
      const skill = o.estimates.find((e) => e.metric === 'brierSkillVsTrainingBaseRate')!;
      assert.ok(Math.abs(skill.value - o.brierSkillVsTrainingBaseRate!) < 1e-12);
      assert.equal(
        o.verdict,
        skill.low > 0 ? 'BETTER_THAN_BASE_RATE' : skill.high < 0 ? 'WORSE_THAN_BASE_RATE' : 'NO_BETTER_THAN_BASE_RATE',
      );
      assert.deepEqual(o.estimation, {
        method: stored.estimation!.method,
        block: 'MONTH',
        blocks: stored.estimation!.blocks,
        replicates: 1000,
        seed: stored.estimation!.seed,
        level: 0.95,
      });
      assert.equal(o.estimatesNote, null);
    }
  });

  test('an explicit null for an optional argument means the same as leaving it out', async () => {
    const pairs = [
      [ConfidenceHistoryDocument, { symbol: 'E02' }, { symbol: 'E02', strategy: null, version: null, from: null, to: null, bucket: null }],
      [ConfidenceTrendsDocument, { symbols: ['E01', 'E03'] }, { symbols: ['E01', 'E03'], strategy: null, window: null }],
      [ModelMetricsDocument, { strategy: 'direction-1d' }, { strategy: 'direction-1d', version: null, symbol: null, from: null, to: null }],
    ] as const;
    for (const [document, omitted, nulls] of pairs) {
      const a = await execute(server.url, document as never, omitted as never);
      const b = await execute(server.url, document as never, nulls as never);
      assert.equal(b.errors, undefined, JSON.stringify(b.errors));
      assert.deepEqual(b.data, a.data);
      assert.ok(JSON.stringify(a.data).length > 60, 'a non-trivial answer to compare');
    }
  });

  test('the contract’s argument shapes are accepted as written in DESIGN §4', async () => {
    const { errors } = await postQuery(
      server.url,
      '{ prediction(symbol: "E01") { history { time } } confidenceHistory(symbol: "E01", bucket: "1 hour") { time } }',
    );
    assert.equal(errors, undefined, JSON.stringify(errors));
  });
});

describe(`outcomes are filled in by the gateway itself as the synthetic market ticks (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({
      HISTORY_FLUSH_INTERVAL_MS: '50',
      OUTCOMES_INTERVAL_MS: '100',
      SYNTHETIC_TICK_MS: '100',
      MARKET_CACHE_TTL_MS: '0',
    });
  });
  after(async () => server?.close());

  test('a served direction-1d prediction gets its outcome one bar later, without anyone asking', async () => {
    assert.equal(server.gateway.market.name, 'synthetic');
    const { data, errors } = await execute(server.url, PredictionsWithHistoryDocument, {
      symbols: ['AAPL', 'MSFT'],
      strategy: 'direction-1d',
      last: 1,
    });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const asOf = data!.predictions.map((p) => p!.asOf);
    const deadline = Date.now() + 15_000;
    let resolved: Array<{ symbol: string; realized_return: number | null; correct: boolean | null; covered: boolean | null }> = [];
    while (Date.now() < deadline) {
      resolved = await historyWithOutcomes(
        server.gateway.database.db,
        sql`h.time = any(${asOf}::timestamptz[]) and o.realized_return is not null`,
      );
      if (resolved.length === 2) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(resolved.length, 2, 'both outcomes stored by the periodic pass');
    for (const r of resolved) {
      const bars = (await server.gateway.market.fetchBars([r.symbol], { lookback: 3000 })).get(r.symbol)!;
      const i = bars.findIndex((b) => b.time.toISOString() === asOf[r.symbol === 'AAPL' ? 0 : 1]);
      assert.ok(Math.abs(r.realized_return! - (bars[i + 1]!.adjClose / bars[i]!.adjClose - 1)) < 1e-12);
      assert.equal(typeof r.covered, 'boolean');
    }
  });
});
