import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import {
  browserUnavailable,
  ensureWebBuilt,
  launchBrowser,
  paintedPixels,
  screenshotOnFailure,
  WEB_DIST,
  type Browser,
} from '../helpers/browser.js';
import {
  FAST_SYNTHETIC_ENV,
  IMPORTED_LAST_BAR,
  importRealBars,
  marketDataMissing,
  runSyntheticGateway,
  stopGateway,
} from '../helpers/market-source.js';
import { spawnGateway, type GatewayProcess } from '../helpers/process.js';
import { createTestDatabase, testRedisEnv, type TestDatabase } from '../helpers/services.js';

/**
 * The web app after issue 18's start → import → restart path: the symbol page's default chart (10-second
 * buckets over the hour before asOf, no `to`) draws the imported market's history instead of failing
 * because `to` defaulted to the synthetic run's latest row, and the Models page shows no synthetic
 * figures as "Realized". Screenshots: test-artifacts/browser/.
 */
const unavailable = browserUnavailable() ?? marketDataMissing();

describe('web app after start → import → restart', { skip: unavailable ?? false, timeout: 900_000 }, () => {
  let database: TestDatabase;
  let gateway: GatewayProcess;
  let url: string;
  let browser: Browser;

  before(async () => {
    ensureWebBuilt();
    database = await createTestDatabase();
    const env = { ...database.env, ...testRedisEnv(), WEB_APP_DIR: WEB_DIST };
    await runSyntheticGateway(env);
    await importRealBars(env);
    gateway = spawnGateway({ ...env, ...FAST_SYNTHETIC_ENV }, { timeoutMs: 300_000 });
    ({ url } = await gateway.ready);
    await untilRecorded(url, 'AAPL');
    browser = await launchBrowser();
  });

  const step = screenshotOnFailure(() => browser);

  after(async () => {
    await browser?.close();
    if (gateway) await stopGateway(gateway).catch(() => gateway.kill('SIGKILL'));
    await database?.drop();
  });

  step('the symbol page renders its default chart from the imported market', async () => {
    const { page } = browser;
    await page.goto(`${url}/#/symbol/AAPL`);
    await page.getByRole('heading', { name: 'AAPL', level: 1 }).waitFor({ timeout: 30_000 });
    const lede = (await page.locator('.lede').textContent()) ?? '';
    assert.ok(lede.includes(String(IMPORTED_LAST_BAR.getUTCFullYear())), `the prediction is as of the imported bars: ${lede}`);
    const chart = 'canvas[data-chart="confidence history"]';
    await page.locator(chart).waitFor({ timeout: 30_000 });
    assert.ok((await paintedPixels(page, chart)) > 500, 'the history chart is drawn');
    assert.equal(await page.locator('[role=alert]').count(), 0, 'no error box on the page');
    assert.deepEqual(browser.problems, []);
    await browser.screenshot('market-source-symbol');
  });

  step('the Models page shows no realized figures from the synthetic run', async () => {
    const { page } = browser;
    await page.goto(`${url}/#/models`);
    const active = page.locator('[data-role=active]');
    await active.first().waitFor({ timeout: 30_000 });
    // The caption the page shows when the realized sample is empty: the synthetic run's outcomes are not counted.
    await active.first().getByText('No served prediction has resolved yet').waitFor({ timeout: 30_000 });
    await browser.screenshot('market-source-models');
  });
});

/**
 * Serves AAPL's prediction over HTTP until its history holds a row: the history writer records served
 * predictions asynchronously, and a page loaded before the first row is written shows the chart's empty
 * caption, which is right but not what this test looks at.
 */
async function untilRecorded(url: string, symbol: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const query = `{ prediction(symbol: "${symbol}") { history(last: 1) { time } } }`;
  for (;;) {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as { data?: { prediction?: { history?: unknown[] } | null } };
    if ((body.data?.prediction?.history?.length ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error(`no recorded ${symbol} prediction after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
