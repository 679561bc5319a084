import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { seededRandom } from '../../src/domain/statistics.js';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { BacktestDocument, type BacktestQueryVariables } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');
const SYMBOLS = ['AAPL', 'JPM', 'KO', 'XOM', 'NVDA'];
const FROM = '2019-01-01T00:00:00.000Z';
const TO = '2019-12-31T00:00:00.000Z';

let server: TestGateway;
const csv = new Map<string, Bar[]>();

before(async () => {
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const files = readdirSync(dailyAdjusted);
  for (const symbol of SYMBOLS) {
    const parsed = await readBarsCsvFile(
      path.join(
        dailyAdjusted,
        files.find((f) => f.startsWith(`DA-${symbol}-T-`))!,
      ),
    );
    assert.ok(parsed.ok);
    // From mid-2018: a feature window before 2019, and few rows to store per stack.
    csv.set(
      symbol,
      parsed.bars.filter((b) => b.time >= new Date('2018-06-01')).sort((a, b) => a.time.getTime() - b.time.getTime()),
    );
  }
  server = await startTestGateway({}, { bars: [...csv.values()].flat() });
});

after(async () => {
  await server?.close();
});

/** The 2019 backtest of SYMBOLS, with `variables` replacing any of its arguments (some deliberately invalid). */
const backtest = (variables: Partial<BacktestQueryVariables> | Record<string, unknown>) =>
  execute(server.url, BacktestDocument, {
    strategy: 'direction-1d',
    symbols: SYMBOLS,
    from: FROM,
    to: TO,
    ...variables,
  } as BacktestQueryVariables);

test(`backtest (${stackName}): the 2019 benchmark of 5 real symbols equals a recomputation from the CSVs' adjusted closes (1e-9)`, async () => {
  const { data, errors } = await backtest({ rule: 'LONG_SHORT', costBps: 5 });
  assert.equal(errors, undefined, JSON.stringify(errors));
  const b = data!.backtest.benchmark;

  // The recomputation, plainly: decision days are 2019 trading days whose next trading day is in 2019 too;
  // each day's return is the mean over the symbols of adjClose(t+1)/adjClose(t) − 1.
  const inYear = (bar: Bar) => bar.time >= new Date(FROM) && bar.time <= new Date(TO);
  const dates = [
    ...new Set(
      SYMBOLS.flatMap((s) =>
        csv
          .get(s)!
          .filter(inYear)
          .map((bar) => bar.time.getTime()),
      ),
    ),
  ].sort((x, y) => x - y);
  const adj = new Map(SYMBOLS.map((s) => [s, new Map(csv.get(s)!.map((bar) => [bar.time.getTime(), bar.adjClose]))]));
  const returns: number[] = [];
  for (let k = 0; k + 1 < dates.length; k++) {
    const today = SYMBOLS.map((s) => adj.get(s)!.get(dates[k]!)!);
    const tomorrow = SYMBOLS.map((s) => adj.get(s)!.get(dates[k + 1]!)!);
    returns.push(SYMBOLS.reduce((sum, _, i) => sum + tomorrow[i]! / today[i]! - 1, 0) / SYMBOLS.length);
  }
  let equity = 1;
  let peak = 1;
  let maxDrawdown = 0;
  for (const r of returns) {
    equity *= 1 + r;
    peak = Math.max(peak, equity);
    maxDrawdown = Math.max(maxDrawdown, 1 - equity / peak);
  }
  const n = returns.length;
  const mean = returns.reduce((x, y) => x + y, 0) / n;
  const sd = Math.sqrt(returns.reduce((x, r) => x + (r - mean) ** 2, 0) / (n - 1));

  assert.equal(n, 251, '252 trading days in 2019, the last has no next day inside it');
  assert.equal(b.days, n);
  const close = (actual: number | null | undefined, expected: number, what: string) =>
    assert.ok(actual !== null && actual !== undefined && Math.abs(actual - expected) <= 1e-9, `${what}: ${actual} vs ${expected}`);
  close(b.finalEquity, equity, 'final equity');
  close(b.annualReturn, equity ** (252 / n) - 1, 'annual return');
  close(b.volatility, sd * Math.sqrt(252), 'volatility');
  close(b.sharpe, (mean / sd) * Math.sqrt(252), 'sharpe');
  close(b.maxDrawdown, maxDrawdown, 'max drawdown');
  data!.backtest.curve.forEach((p, i) => close(p.benchmarkReturn, returns[i]!, `benchmark return on ${p.time}`));
  assert.equal(b.costsPaid, 0);

  // The strategy side is consistent with its own curve and costs.
  const m = data!.backtest.metrics;
  assert.equal(m.days, n);
  close(
    m.finalEquity,
    data!.backtest.curve.reduce((e, p) => e * (1 + p.dailyReturn), 1),
    'strategy equity',
  );
  close(m.costsPaid, (5 / 10_000) * data!.backtest.curve.reduce((s, p) => s + p.turnover, 0), 'costs paid');
  assert.equal(data!.backtest.predictions, SYMBOLS.length * 252);
  assert.deepEqual(data!.backtest.warnings, [], '2019 is held out for v1 (fitted on 2000..2017)');
});

test(`backtest (${stackName}): figures carry month-block bootstrap intervals that contain their values and recompute independently`, async () => {
  const { data, errors } = await backtest({ rule: 'LONG_SHORT', costBps: 5 });
  assert.equal(errors, undefined, JSON.stringify(errors));
  const { metrics, benchmark, curve, estimation, estimatesNote } = data!.backtest;
  assert.equal(estimatesNote, null);
  assert.ok(estimation);
  assert.equal(estimation.block, 'MONTH');
  assert.equal(estimation.blocks, 12, 'the 2019 decision days fall in 12 calendar months');
  assert.equal(estimation.replicates, 1000);
  assert.equal(estimation.level, 0.95);
  const figures = ['annualReturn', 'volatility', 'sharpe', 'maxDrawdown', 'hitRate'];
  assert.deepEqual(
    metrics.estimates.map((e) => e.metric),
    [...figures, 'excessAnnualReturn'],
  );
  assert.deepEqual(
    benchmark.estimates.map((e) => e.metric),
    figures,
  );
  for (const [side, m] of [
    ['strategy', metrics],
    ['benchmark', benchmark],
  ] as const) {
    for (const e of m.estimates) {
      assert.ok(e.low <= e.value && e.value <= e.high, `${side} ${e.metric}: ${e.value} outside [${e.low}, ${e.high}]`);
      assert.ok(e.low < e.high, `${side} ${e.metric}: a degenerate interval from 12 months`);
      assert.equal(e.level, 0.95);
      if (e.metric !== 'excessAnnualReturn')
        assert.equal(e.value, m[e.metric as keyof typeof m], `${side} ${e.metric} is the figure served`);
    }
  }
  const excess = metrics.estimates.find((e) => e.metric === 'excessAnnualReturn')!;
  assert.equal(excess.value, metrics.annualReturn! - benchmark.annualReturn!);

  // The recomputation: its own month grouping, concatenation and type-7 percentile over the served daily
  // returns; only the seeded PRNG (mulberry32) is shared, as the stated seed names it.
  const months = new Map<string, Array<{ s: number; b: number }>>();
  for (const p of curve) {
    const key = p.time.slice(0, 7);
    months.set(key, [...(months.get(key) ?? []), { s: p.dailyReturn, b: p.benchmarkReturn }]);
  }
  const blocks = [...months.keys()].sort().map((k) => months.get(k)!);
  const random = seededRandom(estimation.seed);
  const stats = (rs: number[]) => {
    let equity = 1;
    let peak = 1;
    let drawdown = 0;
    for (const r of rs) {
      equity *= 1 + r;
      peak = Math.max(peak, equity);
      drawdown = Math.max(drawdown, 1 - equity / peak);
    }
    const mean = rs.reduce((x, y) => x + y, 0) / rs.length;
    const sd = Math.sqrt(rs.reduce((x, r) => x + (r - mean) ** 2, 0) / (rs.length - 1));
    return { annual: equity ** (252 / rs.length) - 1, sharpe: (mean / sd) * Math.sqrt(252), drawdown };
  };
  const draws = { drawdown: [] as number[], benchmarkSharpe: [] as number[], excess: [] as number[] };
  for (let r = 0; r < estimation.replicates; r++) {
    const sample = Array.from({ length: blocks.length }, () => blocks[Math.floor(random() * blocks.length)]!).flat();
    const s = stats(sample.map((d) => d.s));
    const b = stats(sample.map((d) => d.b));
    draws.drawdown.push(s.drawdown);
    draws.benchmarkSharpe.push(b.sharpe);
    draws.excess.push(s.annual - b.annual);
  }
  const quantile = (values: number[], q: number) => {
    const sorted = [...values].sort((x, y) => x - y);
    const h = (sorted.length - 1) * q;
    return sorted[Math.floor(h)]! + (h - Math.floor(h)) * (sorted[Math.ceil(h)]! - sorted[Math.floor(h)]!);
  };
  const check = (served: { value: number; low: number; high: number; widened: boolean }, values: number[], what: string) => {
    const low = quantile(values, 0.025);
    const high = quantile(values, 0.975);
    assert.ok(Math.abs(served.low - Math.min(low, served.value)) <= 1e-12, `${what} low: ${served.low} vs ${low}`);
    assert.ok(Math.abs(served.high - Math.max(high, served.value)) <= 1e-12, `${what} high: ${served.high} vs ${high}`);
    assert.equal(served.widened, served.value < low || served.value > high, `${what} widened`);
  };
  check(
    metrics.estimates.find((e) => e.metric === 'maxDrawdown')!,
    draws.drawdown,
    'strategy maxDrawdown',
  );
  check(
    benchmark.estimates.find((e) => e.metric === 'sharpe')!,
    draws.benchmarkSharpe,
    'benchmark sharpe',
  );
  check(excess, draws.excess, 'excessAnnualReturn');
});

test(`backtest (${stackName}): fewer than 6 calendar months give no intervals, and say why`, async () => {
  const { data, errors } = await backtest({ from: '2019-01-01T00:00:00.000Z', to: '2019-03-29T00:00:00.000Z' });
  assert.equal(errors, undefined, JSON.stringify(errors));
  assert.deepEqual(data!.backtest.metrics.estimates, []);
  assert.deepEqual(data!.backtest.benchmark.estimates, []);
  assert.equal(data!.backtest.estimation, null);
  assert.match(data!.backtest.estimatesNote ?? '', /span 3 calendar month\(s\); intervals need at least 6/);
});

test(`backtest (${stackName}): a period the version was fitted on is answered with a warning`, async () => {
  const { data, errors } = await backtest({ from: '2017-01-01T00:00:00.000Z', to: '2019-03-01T00:00:00.000Z' });
  assert.equal(errors, undefined, JSON.stringify(errors));
  assert.equal(data!.backtest.warnings.length, 1);
  assert.match(data!.backtest.warnings[0]!, /was fitted on 2000-03-23\.\..* which overlaps 2017-01-01\.\.2019-03-01/);
});

test(`backtest (${stackName}): bad inputs are 4xx codes, nothing runs`, async () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ from: TO, to: FROM }, 'BAD_USER_INPUT', /must be before/],
    [{ to: '2999-01-01T00:00:00.000Z' }, 'BAD_USER_INPUT', /in the future/],
    [{ from: '1990-01-01T00:00:00.000Z' }, 'BAD_USER_INPUT', /spans \d+ days; at most 3700/],
    [{ costBps: -1 }, 'BAD_USER_INPUT', /costBps/],
    [{ rule: 'TOP_BOTTOM_QUANTILE', quantile: 0.7 }, 'BAD_USER_INPUT', /quantile/],
    [{ version: 'v9' }, 'BAD_USER_INPUT', /Unknown version "v9"/],
    [{ strategy: 'nope-1d' }, 'UNKNOWN_STRATEGY', /Unknown strategy/],
    [{ symbols: ['AAPL', 'AAPL'] }, 'BAD_USER_INPUT', /at most once/],
    [{ symbols: Array.from({ length: 101 }, (_, i) => `S${i}`) }, 'BAD_USER_INPUT', /at most 100 per backtest/],
    [{ symbols: ['AAPL', 'ZZZZ'] }, 'UNKNOWN_SYMBOL', /ZZZZ/],
  ];
  for (const [variables, code, message] of cases) {
    const { data, errors } = await backtest(variables);
    assert.equal(data, null, JSON.stringify(variables));
    assert.equal(errors?.[0]?.extensions?.code, code, `${JSON.stringify(variables).slice(0, 80)}: ${errors?.[0]?.message}`);
    assert.match(errors![0]!.message, message);
  }
});

test('npm run backtest: bad arguments exit 2 with the reason and the usage', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sibyl-backtest-cli-'));
  try {
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(
          process.execPath,
          ['--import', 'tsx', 'src/cli/backtest.ts', ...args],
          { cwd: projectRoot, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', DATA_DIR: dataDir }, timeout: 60_000 },
          (error, _stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stderr }),
        ),
      );
    const cases: Array<[string[], RegExp]> = [
      [['--to', '2019-12-31'], /--from YYYY-MM-DD is required/],
      [['--from', '2019-01-01', '--to', '2019-12-31', '--rule', 'NOPE'], /--rule must be one of/],
      [['--from', '2019-01-01', '--to', '2019-12-31', '--cost-bps', 'x'], /--cost-bps must be a number/],
      [['--from', '2019-01-01', '--to', '2019-12-31', '--out', 'x.txt'], /--out must name a .csv or .json/],
      [['--from', '2019-01-01', '--to', '2019-12-31', '--symbols', 'aapl;'], /not a symbol/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await run(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
      assert.match(stderr, /usage: npm run backtest/);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
