import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { StrategyPromotionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import {
  browserUnavailable,
  ensureWebBuilt,
  launchBrowser,
  paintedPixels,
  screenshotOnFailure,
  waitFor,
  WEB_DIST,
  type Browser,
} from '../helpers/browser.js';

/**
 * The reference web app in headless Chromium against a whole gateway (embedded defaults, synthetic
 * market ticking every second), as a newcomer would use it: the watchlist loads and updates live, the
 * symbol view draws its charts, the models view its decisions, a bad symbol shows the gateway's message, and a gateway restart shows
 * the lost-connection banner and then resumes live updates. Screenshots: test-artifacts/browser/.
 */
const unavailable = browserUnavailable();
const TICK_MS = 1_000;
const env = { SYNTHETIC_TICK_MS: String(TICK_MS), SIGNALS_INTERVAL_MS: '0', HISTORY_FLUSH_INTERVAL_MS: '100', WEB_APP_DIR: WEB_DIST };

describe('web app in a browser', { skip: unavailable ?? false, timeout: 180_000 }, () => {
  let server: TestGateway;
  let browser: Browser;

  before(async () => {
    ensureWebBuilt();
    server = await startTestGateway(env);
    browser = await launchBrowser();
  });

  const step = screenshotOnFailure(() => browser);

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  step('the page is served at / with a CSP-safe build and the watchlist loads predictions', async () => {
    const { page } = browser;
    const response = await page.goto(`${server.url}/`);
    assert.equal(response?.status(), 200);
    const rows = page.locator('[data-testid=watchlist] tbody tr[data-symbol]');
    await rows.first().waitFor({ timeout: 20_000 });
    assert.equal(await rows.count(), 12, 'a fresh watchlist shows 12 of the gateway symbols');
    // The numbers are the API's: compare one row with a direct query.
    const aapl = page.locator('tr[data-symbol="AAPL"]');
    assert.match((await aapl.locator('[data-field=confidence]').textContent()) ?? '', /^\d+\.\d%$/);
    assert.match((await aapl.locator('.signal').textContent()) ?? '', /^(BUY|SELL|HOLD)$/);
    assert.ok(await aapl.getAttribute('data-asof'), 'the row carries its asOf');
    await browser.screenshot('watchlist');
  });

  step('a live update arrives: the row moves to a newer bar', async () => {
    const { page } = browser;
    const aapl = page.locator('tr[data-symbol="AAPL"]');
    const first = Date.parse((await aapl.getAttribute('data-asof'))!);
    await waitFor(
      async () => Date.parse((await aapl.getAttribute('data-asof')) ?? ''),
      (asOf) => asOf > first,
      'a newer AAPL row',
    );
    assert.match((await page.getByTestId('live-count').textContent()) ?? '', /\d+ live updates? received/);
    // The sparkline grows with live points.
    const points = Number(await aapl.locator('svg.sparkline').getAttribute('data-points'));
    assert.ok(points >= 2, `sparkline has ${points} points`);
    await browser.screenshot('watchlist-live');
  });

  step('the symbol view draws the confidence history, the interval and the explanation', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/#/symbol/AAPL`);
    await page.getByRole('heading', { name: 'AAPL', level: 1 }).waitFor();
    const history = 'canvas[data-chart="confidence history"]';
    await page.locator(history).waitFor({ timeout: 20_000 });
    assert.ok((await paintedPixels(page, history)) > 500, 'the history chart has something drawn');
    assert.match((await page.getByTestId('history-count').textContent()) ?? '', /recorded predictions/);
    assert.match((await page.getByTestId('interval').textContent()) ?? '', /\d+\.\d\d – \d+\.\d\d/);
    assert.ok(((await page.getByTestId('summary').textContent()) ?? '').length > 20, 'the explanation summary is shown');
    assert.ok((await paintedPixels(page, 'canvas[data-chart="explanation factors"]')) > 500, 'the factor chart has bars');
    // Another bucket size is another query; the chart is drawn again.
    await page.getByRole('button', { name: '1 min' }).click();
    await page.locator(history).waitFor();
    assert.ok((await paintedPixels(page, history)) > 500);
    await browser.screenshot('symbol');
  });

  step('an invalid symbol shows the gateway message; an unknown one is refused by the watchlist', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/#/symbol/${encodeURIComponent('no$pe')}`);
    const alert = page.locator('.problem[data-code=BAD_USER_INPUT]');
    await alert.waitFor({ timeout: 10_000 });
    assert.match((await alert.textContent()) ?? '', /upper-case ticker/);
    await browser.screenshot('invalid-symbol');

    await page.goto(`${server.url}/#/`);
    await page.getByLabel('Symbol to add').fill('ZZZZ');
    await page.getByRole('button', { name: 'Add' }).click();
    const problem = page.locator('.field-problem');
    await problem.waitFor();
    assert.equal(await problem.getAttribute('data-code'), 'UNKNOWN_SYMBOL');
    assert.equal(await page.locator('tr[data-symbol="ZZZZ"]').count(), 0);
  });

  step('the models view plots calibration and metrics of the active version', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/#/models`);
    const active = page.locator('[data-role=active]').first();
    await active.waitFor({ timeout: 10_000 });
    assert.ok((await paintedPixels(page, '[data-role=active] canvas[data-chart=calibration]')) > 500);
    assert.match((await active.locator('table.metrics').textContent()) ?? '', /Accuracy\d+\.\d%/);
    await browser.screenshot('models');
  });

  step('the models view measures drift of the active version on demand', async () => {
    const { page } = browser;
    const panel = page.locator('[data-testid=drift]').first();
    await panel.waitFor({ timeout: 10_000 });
    await panel.locator('button[type=submit]').click();
    const rows = panel.locator('tr[data-feature]');
    await rows.first().waitFor({ timeout: 60_000 });
    // Thirteen inputs, plus the predicted probability when a reference exists for it.
    assert.ok((await rows.count()) >= 13, `drift rows: ${await rows.count()}`);
    assert.match((await panel.locator('tr[data-feature=vol_20d]').textContent()) ?? '', /vol_20d\d+\.\d{3}/);
    assert.match((await panel.locator('[data-field=months]').textContent()) ?? '', /Drifted by month: \d{4}-\d{2}/);
    await browser.screenshot('models-drift');
  });

  step('the models view lists the latest promotion decisions of each strategy', async () => {
    const { page } = browser;
    // One evaluation, as the loop makes them (recorded unless the same evidence already was).
    await server.gateway.promotion.evaluate('direction-1d');
    const { data, errors } = await execute(server.url, StrategyPromotionsDocument, { last: 1 });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const latest = data!.strategies.find((s) => s.name === 'direction-1d')!.promotions[0]!;
    await page.goto(`${server.url}/#/models`);
    const panel = page.locator('[data-testid=promotions][data-strategy=direction-1d]');
    const row = panel.locator('tbody tr').first();
    await row.waitFor({ timeout: 10_000 });
    assert.equal(await row.getAttribute('data-action'), latest.action);
    assert.equal(await row.getAttribute('data-applied'), String(latest.applied));
    const text = (await row.textContent()) ?? '';
    assert.ok(text.includes(`${latest.action} ${latest.reason}`), text);
    assert.ok(text.includes(latest.fromVersion) && text.includes(latest.summary), text);
    await browser.screenshot('models-promotions');
  });

  step('a gateway restart shows the lost-connection banner, then live updates resume', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/#/`);
    const aapl = page.locator('tr[data-symbol="AAPL"]');
    await aapl.waitFor({ timeout: 20_000 });
    const dot = page.locator('.link-dot');
    await waitFor(
      () => dot.getAttribute('data-state'),
      (state) => state === 'connected',
      'the live connection',
    );

    const port = new URL(server.url).port;
    await server.gateway.stop();
    const banner = page.getByTestId('link-banner');
    const bannerState = async () => ((await banner.count()) ? await banner.getAttribute('data-state') : null);
    await waitFor(bannerState, (state) => state === 'lost' || state === 'reconnecting', 'the lost-connection banner', 10_000);
    assert.match((await banner.textContent()) ?? '', /reconnecting/);
    await browser.screenshot('connection-lost');

    const seen = Date.parse((await aapl.getAttribute('data-asof'))!);
    server = await startTestGateway({ ...env, PORT: port }, { database: server.database });
    await waitFor(bannerState, (state) => state === 'restored', 'the connection-restored banner', 30_000);
    await waitFor(
      async () => Date.parse((await aapl.getAttribute('data-asof')) ?? ''),
      (asOf) => asOf > seen,
      'a live update after the restart',
    );
    await browser.screenshot('connection-restored');
    assert.deepEqual(
      browser.problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p)),
      [],
    );
  });
});
