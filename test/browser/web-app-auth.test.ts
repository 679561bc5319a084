import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { apiKeysOf } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  browserUnavailable,
  ensureWebBuilt,
  launchBrowser,
  screenshotOnFailure,
  waitFor,
  WEB_DIST,
  type Browser,
} from '../helpers/browser.js';

/**
 * The web app against a production gateway: helmet's Content-Security-Policy is on (the app must run
 * under it: no violations), API keys are required, and the app's key field is how a user gets in, over
 * HTTP and over the WebSocket alike.
 */
const unavailable = browserUnavailable();

describe('web app with access control (production: CSP and API keys)', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let server: TestGateway;
  let browser: Browser;
  let viewerKey: string;

  before(async () => {
    ensureWebBuilt();
    server = await startTestGateway({ NODE_ENV: 'production', SYNTHETIC_TICK_MS: '1000', SIGNALS_INTERVAL_MS: '0', WEB_APP_DIR: WEB_DIST });
    viewerKey = (await apiKeysOf(server).create('viewer', 'web app test')).key;
    browser = await launchBrowser();
  });

  const step = screenshotOnFailure(() => browser);

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  step('without a key the page says to enter one; with a viewer key it loads and updates live, under the CSP', async () => {
    const { page } = browser;
    const response = await page.goto(`${server.url}/`);
    assert.match(response?.headers()['content-security-policy'] ?? '', /connect-src 'self' ws: wss:/);
    const problem = page.locator('.problem[data-code=UNAUTHENTICATED]');
    await problem.waitFor({ timeout: 15_000 });
    assert.match((await problem.textContent()) ?? '', /API key/);
    await browser.screenshot('auth-needed');

    await page.locator('#api-key').fill(viewerKey);
    await page.getByRole('button', { name: 'Use' }).click();
    const aapl = page.locator('tr[data-symbol="AAPL"]');
    await aapl.waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate("sessionStorage.getItem('sibyl.apiKey')"), viewerKey, 'the key is kept in sessionStorage');
    const first = Date.parse((await aapl.getAttribute('data-asof'))!);
    // A live update needs the key on the WebSocket too (signals needs the viewer role).
    await waitFor(
      async () => Date.parse((await aapl.getAttribute('data-asof')) ?? ''),
      (asOf) => asOf > first,
      'a live update with the key',
    );
    await browser.screenshot('auth-watchlist');

    // The key survives a reload (same tab).
    await page.reload();
    await aapl.waitFor({ timeout: 20_000 });
    assert.deepEqual(
      browser.problems.filter((p) => /Content Security Policy|Refused to/i.test(p)),
      [],
      'no CSP violation',
    );
  });

  step('a key that does not verify is refused with a message pointing at the key field', async () => {
    const { page } = browser;
    await page.locator('#api-key').fill('sk_not-a-real-key');
    await page.getByRole('button', { name: 'Use' }).click();
    const problem = page.locator('.problem[data-code=UNAUTHENTICATED]');
    await problem.waitFor({ timeout: 15_000 });
    assert.match((await problem.textContent()) ?? '', /API key/);
    await browser.screenshot('auth-refused');
  });
});
