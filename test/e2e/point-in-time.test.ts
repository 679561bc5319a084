import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { PointInTimePredictionDocument, PointInTimePredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { metricDeltas } from '../helpers/metrics.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');
const SYMBOLS = ['AAPL', 'AMZN', 'BA', 'JNJ', 'JPM', 'KO', 'MSFT', 'NVDA', 'OXY', 'XOM'];
const RUNS = 'sibyl_inference_runs_total{strategy="direction-1d",version="v1"}';
const day = (iso: string) => new Date(`${iso}T00:00:00.000Z`);

let server: TestGateway;
const csv = new Map<string, Bar[]>();

before(async () => {
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const files = readdirSync(dailyAdjusted);
  for (const symbol of SYMBOLS) {
    const file = files.find((f) => f.startsWith(`DA-${symbol}-T-`));
    assert.ok(file, `no CSV for ${symbol}`);
    const parsed = await readBarsCsvFile(path.join(dailyAdjusted, file));
    assert.ok(parsed.ok);
    // From 2015 on: five years before the month measured, and a fifth of the rows to store per stack.
    csv.set(
      symbol,
      parsed.bars.filter((b) => b.time >= day('2015-01-01')).sort((a, b) => a.time.getTime() - b.time.getTime()),
    );
  }
  const started = performance.now();
  server = await startTestGateway({}, { bars: [...csv.values()].flat() });
  process.stdout.write(
    `# ${SYMBOLS.length} symbols imported and the gateway started in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
});

after(async () => {
  await server?.close();
});

/** Upserts bars into the gateway's database (as an import would), behind its back. */
async function store(bars: readonly Bar[]): Promise<void> {
  await new BarsRepository(server.gateway.database.db).upsert(bars);
}

test(`point-in-time (${stackName}): every field as of a past bar, the version chosen honestly, and explanations`, async () => {
  const { data, errors } = await execute(server.url, PointInTimePredictionDocument, { symbol: 'OXY', asOf: '2020-03-09T00:00:00.000Z' });
  assert.equal(errors, undefined, JSON.stringify(errors));
  const p = data!.prediction;
  assert.equal(p.asOf, '2020-03-09T00:00:00.000Z');
  assert.equal(p.quote.time, '2020-03-09T00:00:00.000Z');
  assert.equal(p.quote.close, csv.get('OXY')!.find((b) => b.time.getTime() === day('2020-03-09').getTime())!.close);
  assert.equal(p.model.version, 'v1');
  // Nothing was recorded as active in 2020 (this deployment started today): the answer says so.
  assert.deepEqual(p.pointInTime, { requested: '2020-03-09T00:00:00.000Z', versionChosenBy: 'CURRENT_ACTIVE' });
  assert.ok(p.interval.low < p.quote.close && p.quote.close < p.interval.high);
  assert.equal(p.explanation.factors.length, 13);
  const sum = p.explanation.factors.reduce((s, f) => s + f.contribution, 0);
  assert.ok(Math.abs(p.explanation.baseline + sum - p.probability) < 1e-6, 'attributions sum to probability − baseline');

  const named = await execute(server.url, PointInTimePredictionDocument, {
    symbol: 'OXY',
    asOf: '2020-03-09T00:00:00.000Z',
    version: 'v1',
  });
  assert.equal(named.data!.prediction.pointInTime!.versionChosenBy, 'REQUESTED');
  assert.equal(named.data!.prediction.probability, p.probability);

  // The first start recorded v1 as the default; an instant after that finds the record.
  const recorded = await execute(server.url, PointInTimePredictionDocument, { symbol: 'OXY', asOf: new Date().toISOString() });
  assert.equal(recorded.data!.prediction.pointInTime!.versionChosenBy, 'RECORDED_ACTIVE');
  assert.equal(recorded.data!.prediction.asOf, '2021-04-21T00:00:00.000Z', 'the newest stored bar');
});

test(`point-in-time (${stackName}): a non-trading day answers as of the last bar before it and says which`, async () => {
  const { data, errors } = await execute(server.url, PointInTimePredictionsDocument, {
    symbols: ['AAPL', 'JPM'],
    asOf: '2020-03-15T12:00:00.000Z', // a Sunday
  });
  assert.equal(errors, undefined);
  for (const p of data!.predictions) {
    assert.equal(p!.asOf, '2020-03-13T00:00:00.000Z');
    assert.equal(p!.pointInTime!.requested, '2020-03-15T12:00:00.000Z');
  }
});

test(`point-in-time (${stackName}): clear client errors for a future asOf, one before the data, an unknown version or symbol`, async () => {
  const future = await execute(server.url, PointInTimePredictionsDocument, { symbols: ['AAPL'], asOf: '2999-01-01T00:00:00.000Z' });
  assert.equal(future.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  assert.match(future.errors![0]!.message, /in the future/);

  const version = await execute(server.url, PointInTimePredictionsDocument, {
    symbols: ['AAPL'],
    asOf: '2020-03-02T00:00:00.000Z',
    version: 'v9',
  });
  assert.equal(version.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  assert.match(version.errors![0]!.message, /Unknown version "v9" of direction-1d; loaded: v1/);

  const strategy = await execute(server.url, PointInTimePredictionsDocument, {
    symbols: ['AAPL'],
    strategy: 'nope-1d',
    asOf: '2020-03-02T00:00:00.000Z',
  });
  assert.equal(strategy.errors?.[0]?.extensions?.code, 'UNKNOWN_STRATEGY');

  const first = csv.get('AAPL')![0]!.time;
  const early = await execute(server.url, PointInTimePredictionsDocument, {
    symbols: ['AAPL', 'ZZZZ', 'MSFT'],
    asOf: new Date(first.getTime() - 86_400_000).toISOString(),
  });
  assert.deepEqual(early.data!.predictions, [null, null, null]);
  const codes = new Map(early.errors!.map((e) => [e.path!.at(-1), e.extensions!.code]));
  assert.deepEqual([...codes].sort(), [
    [0, 'BAD_USER_INPUT'],
    [1, 'UNKNOWN_SYMBOL'],
    [2, 'BAD_USER_INPUT'],
  ]);
  assert.match(early.errors!.find((e) => e.path!.at(-1) === 0)!.message, /before the first stored bar of AAPL/);

  const thin = await execute(server.url, PointInTimePredictionsDocument, {
    symbols: ['AAPL'],
    asOf: csv.get('AAPL')![50]!.time.toISOString(),
  });
  assert.equal(thin.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  assert.match(thin.errors![0]!.message, /51 stored bars at or before it .*need 100/);
});

test(`point-in-time (${stackName}): one inference run for ten symbols at one asOf`, async () => {
  let answered = 0;
  const delta = await metricDeltas(server.url, [RUNS], async () => {
    const { data, errors } = await execute(server.url, PointInTimePredictionsDocument, {
      symbols: SYMBOLS,
      asOf: '2020-03-04T00:00:00.000Z',
    });
    assert.equal(errors, undefined);
    answered = data!.predictions.filter((p) => p !== null).length;
  });
  assert.equal(answered, SYMBOLS.length);
  assert.equal(delta[RUNS], 1, `${delta[RUNS]} inference runs for ${SYMBOLS.length} symbols at one asOf`);
});

test(`point-in-time (${stackName}): no look-ahead, a bar after asOf changed does not change the answer`, async () => {
  const ask = async (asOf: string) => {
    const { data, errors } = await execute(server.url, PointInTimePredictionsDocument, { symbols: ['KO'], asOf });
    assert.equal(errors, undefined);
    return data!.predictions[0]!;
  };
  const at = '2020-03-16T00:00:00.000Z';
  const beforeChange = await ask(at);
  const bars = csv.get('KO')!;
  const i = bars.findIndex((b) => b.time.toISOString() === at);
  const next = bars[i + 1]!;
  const current = bars[i]!;
  await store([{ ...next, close: next.close * 3, adjClose: next.adjClose * 3, high: next.high * 3, volume: next.volume * 10 }]);
  try {
    const afterChange = await ask(at);
    assert.deepEqual(afterChange, beforeChange, 'a bar after asOf changed the point-in-time answer');
    // The control: the same change to the asOf bar itself does change it, so the comparison can fail.
    await store([{ ...current, close: current.close * 3, adjClose: current.adjClose * 3, high: current.high * 3 }]);
    const changedAt = await ask(at);
    assert.notEqual(changedAt.featuresHash, beforeChange.featuresHash);
  } finally {
    await store([next, current]);
  }
});

/**
 * The acceptance figure: on every trading day of March 2020, does the realized next close (the close
 * carried forward by the adjusted-close ratio, as outcomes.service.ts measures it) fall inside
 * `interval(level: 0.95)`? Realized prices come from the CSVs, not from the gateway.
 */
test(`point-in-time (${stackName}): coverage of interval(level: 0.95) over March 2020, 10 real symbols (at least 90%)`, async () => {
  const { covered, total } = await marchCoverage();
  assert.equal(total, SYMBOLS.length * 22, 'every symbol on every one of the 22 trading days of March 2020');
  process.stdout.write(`# March 2020 coverage of interval(level: 0.95): ${covered}/${total} = ${((100 * covered) / total).toFixed(1)}%\n`);
  // Issue 19's bar for a crash month (the split-conformal interval covered 87.3% here; the
  // volatility-normalised one of docs/decisions/adaptive-intervals.md 96.8%).
  assert.ok(covered / total >= 0.9, `March 2020 coverage ${covered}/${total} is below 90%`);
});

async function marchCoverage(): Promise<{ covered: number; total: number }> {
  const days = csv
    .get('AAPL')!
    .filter((b) => b.time >= day('2020-03-01') && b.time < day('2020-04-01'))
    .map((b) => b.time.toISOString());
  let covered = 0;
  let total = 0;
  for (const asOf of days) {
    const { data, errors } = await execute(server.url, PointInTimePredictionsDocument, { symbols: SYMBOLS, asOf });
    assert.equal(errors, undefined, `${asOf}: ${JSON.stringify(errors)}`);
    for (const p of data!.predictions) {
      assert.equal(p!.asOf, asOf);
      const bars = csv.get(p!.symbol)!;
      const i = bars.findIndex((b) => b.time.toISOString() === asOf);
      const realized = bars[i]!.close * (bars[i + 1]!.adjClose / bars[i]!.adjClose);
      total++;
      if (realized >= p!.interval.low && realized <= p!.interval.high) covered++;
    }
  }
  return { covered, total };
}
