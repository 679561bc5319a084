import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { BacktestDocument } from '../generated/graphql.js';
import {
  browserUnavailable,
  ensureWebBuilt,
  launchBrowser,
  paintedPixels,
  screenshotOnFailure,
  WEB_DIST,
  type Browser,
} from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { marketDataMissing } from '../helpers/market-source.js';
import { projectRoot } from '../helpers/process.js';

/**
 * The backtest page against an in-process gateway holding three real symbols (mid-2016..2019 from
 * ../shared/data/market): the form runs `backtest`, every figure and interval shown is the API's answer
 * for the same arguments, both charts are drawn, a period the model was fitted on shows the API's
 * warning, and an unknown symbol shows the gateway's error. Screenshots: test-artifacts/browser/.
 */
const unavailable = browserUnavailable() ?? marketDataMissing();
const SYMBOLS = ['AAPL', 'JPM', 'KO'];
const dailyAdjusted = path.join(process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market'), 'daily_adjusted');

async function realBars(): Promise<Bar[]> {
  const files = readdirSync(dailyAdjusted);
  const bars: Bar[] = [];
  for (const symbol of SYMBOLS) {
    const parsed = await readBarsCsvFile(
      path.join(
        dailyAdjusted,
        files.find((f) => f.startsWith(`DA-${symbol}-T-`))!,
      ),
    );
    assert.ok(parsed.ok);
    // A feature window before 2017 and nothing after 2019: few rows to store per stack.
    bars.push(...parsed.bars.filter((b) => b.time >= new Date('2016-06-01') && b.time < new Date('2020-01-01')));
  }
  return bars;
}

describe('web app: the backtest page', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let server: TestGateway;
  let browser: Browser;

  before(async () => {
    ensureWebBuilt();
    server = await startTestGateway({ WEB_APP_DIR: WEB_DIST }, { bars: await realBars() });
    browser = await launchBrowser();
  });

  const step = screenshotOnFailure(() => browser);

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Fills the form and runs it; resolves when the result (or an error box) is shown. */
  async function run(fields: { symbols: string; from: string; to: string; costBps?: string }) {
    const { page } = browser;
    const form = page.getByTestId('backtest-form');
    await form.locator('input[name=symbols]').fill(fields.symbols);
    await form.locator('input[name=from]').fill(fields.from);
    await form.locator('input[name=to]').fill(fields.to);
    await form.locator('input[name=costBps]').fill(fields.costBps ?? '0');
    await form.locator('select[name=rule]').selectOption('LONG_SHORT');
    await form.getByRole('button', { name: 'Run backtest' }).click();
    await page.locator('[data-testid=backtest-result], [role=alert]').first().waitFor({ timeout: 60_000 });
  }

  step('runs a backtest: the figures and intervals shown are the API answer, and both charts are drawn', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/#/backtest`);
    await page.getByRole('heading', { name: 'Backtest', level: 1 }).waitFor({ timeout: 20_000 });
    await run({ symbols: 'aapl, JPM KO', from: '2019-01-01', to: '2019-12-31', costBps: '5' });
    assert.equal(await page.locator('[role=alert]').count(), 0, 'no error box');

    const { data, errors } = await execute(server.url, BacktestDocument, {
      strategy: 'direction-1d',
      symbols: SYMBOLS,
      from: '2019-01-01T00:00:00.000Z',
      to: '2019-12-31T00:00:00.000Z',
      rule: 'LONG_SHORT',
      costBps: 5,
    });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const api = data!.backtest;
    assert.equal(await page.getByTestId('backtest-result').getAttribute('data-version'), api.version);

    const figures = [
      'annualReturn',
      'totalReturn',
      'volatility',
      'sharpe',
      'maxDrawdown',
      'hitRate',
      'turnover',
      'costsPaid',
      'exposure',
      'days',
    ] as const;
    const shown = (side: string, metric: string) =>
      page.locator(`[data-testid=backtest-figures] td[data-side=${side}][data-metric=${metric}]`);
    let intervals = 0;
    for (const [side, m] of [
      ['strategy', api.metrics],
      ['benchmark', api.benchmark],
    ] as const) {
      const rows: Array<{ metric: string; value: number | null }> = [
        ...figures.map((f) => ({ metric: f, value: m[f] })),
        ...(side === 'strategy'
          ? [{ metric: 'excessAnnualReturn', value: m.estimates.find((e) => e.metric === 'excessAnnualReturn')!.value }]
          : []),
      ];
      for (const { metric, value } of rows) {
        const estimate = m.estimates.find((e) => e.metric === metric);
        const cell = shown(side, metric);
        assert.equal(await cell.getAttribute('data-value'), value === null ? '' : String(value), `${side} ${metric} value`);
        const text = (await cell.locator('.value').textContent()) ?? '';
        if (value !== null) {
          // What is printed is the value rounded: a percentage to 0.1 (0.01 signed), a decimal to 0.001.
          const printed = Number(text.replace(/[^\d.−-]/g, '').replace('−', '-'));
          const scale = text.includes('%') ? 100 : 1;
          assert.ok(Math.abs(printed - value * scale) <= 0.051, `${side} ${metric}: shows ${text} for ${value}`);
        }
        if (estimate) {
          intervals++;
          assert.equal(await cell.getAttribute('data-low'), String(estimate.low), `${side} ${metric} low`);
          assert.equal(await cell.getAttribute('data-high'), String(estimate.high), `${side} ${metric} high`);
          assert.match((await cell.locator('.interval').textContent()) ?? '', /\[.+, .+\]/);
        } else assert.equal(await cell.locator('.interval').count(), 0, `${side} ${metric}: no interval without an estimate`);
      }
    }
    assert.equal(intervals, 11, 'five figures on each side and the excess return carry intervals');
    assert.match(
      (await page.getByTestId('estimation').textContent()) ?? '',
      /95(\.0)?% intervals, month-block bootstrap \(12 months, 1000 replicates, seed \d+\)/,
    );
    assert.equal(await page.getByTestId('backtest-warning').count(), 0, '2019 is held out for v1');

    for (const chart of ['canvas[data-chart="backtest equity"]', 'canvas[data-chart="backtest drawdown"]'])
      assert.ok((await paintedPixels(page, chart)) > 500, `${chart} is drawn`);
    assert.deepEqual(browser.problems, []);
    await browser.screenshot('backtest');
  });

  step('a period the version was fitted on shows the API warning', async () => {
    const { page } = browser;
    await run({ symbols: 'AAPL, JPM, KO', from: '2017-01-01', to: '2017-12-31' });
    const warning = page.getByTestId('backtest-warning');
    await warning.first().waitFor({ timeout: 30_000 });
    const { data } = await execute(server.url, BacktestDocument, {
      strategy: 'direction-1d',
      symbols: SYMBOLS,
      from: '2017-01-01T00:00:00.000Z',
      to: '2017-12-31T00:00:00.000Z',
      rule: 'LONG_SHORT',
      costBps: 0,
    });
    assert.deepEqual(await warning.allTextContents(), data!.backtest.warnings);
    assert.match(data!.backtest.warnings[0]!, /overlaps 2017-01-01\.\.2017-12-31/);
    await browser.screenshot('backtest-warning');
  });

  step('an unknown symbol shows the gateway error, not a stale result', async () => {
    const { page } = browser;
    await run({ symbols: 'AAPL, ZZZZ', from: '2019-01-01', to: '2019-12-31' });
    const alert = page.locator('[role=alert]');
    await alert.waitFor({ timeout: 30_000 });
    assert.equal(await alert.getAttribute('data-code'), 'UNKNOWN_SYMBOL');
    assert.match((await alert.textContent()) ?? '', /ZZZZ/);
    assert.equal(await page.getByTestId('backtest-result').count(), 0);
  });
});
