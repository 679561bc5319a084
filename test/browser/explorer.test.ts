import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
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
 * The GraphQL explorer with no internet: every request that is not to the gateway is refused (as a
 * machine without a network would), so Apollo Sandbox's CDN script, Google fonts and favicon fail.
 * `GET /graphql` must still end in a working explorer, served by the gateway under its CSP.
 */
const unavailable = browserUnavailable();

/** Refuses every request but the gateway's; returns the refused URLs. */
async function offline(page: Page, gatewayUrl: string, refuse: 'abort' | 'hang' = 'abort'): Promise<string[]> {
  const refused: string[] = [];
  const origin = new URL(gatewayUrl).origin;
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || new URL(url).origin === origin) return route.continue();
    refused.push(url);
    // 'hang': a firewall that drops packets; the request never answers.
    if (refuse === 'abort') await route.abort('internetdisconnected');
  });
  return refused;
}

const QUERY_EDITOR = '.graphiql-query-editor .monaco-editor';
const HEADERS_EDITOR = '.graphiql-editor-tool .monaco-editor[data-uri*="headers"]';
const RESPONSE = '.graphiql-response .monaco-editor';

/** The text of a Monaco editor in the explorer (Monaco draws spaces as non-breaking ones). */
async function editorText(page: Page, selector: string): Promise<string> {
  return ((await page.locator(`${selector} .view-lines`).first().textContent()) ?? '').replace(/\u00a0/g, ' ');
}

/**
 * Replaces the contents of a Monaco editor as a user would: click, select all, paste. (Typed braces
 * would be doubled by Monaco's auto-closing, as they are for a person typing.)
 */
async function replaceText(page: Page, editor: string, text: string): Promise<void> {
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(page.url()).origin });
  await page.evaluate(`navigator.clipboard.writeText(${JSON.stringify(text)})`);
  await page.locator(editor).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('ControlOrMeta+V');
  await waitFor(
    () => editorText(page, editor),
    (shown) => shown.replace(/\s+/g, '') === text.replace(/\s+/g, ''),
    `the editor to show ${text}`,
    5_000,
  );
}

/** Puts `query` in the operation editor and runs it. */
async function runQuery(page: Page, query: string): Promise<void> {
  await replaceText(page, QUERY_EDITOR, query);
  await page.getByRole('button', { name: /Execute query/ }).click();
}

describe('GraphQL explorer offline', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  let development: TestGateway;
  let production: TestGateway;
  let browser: Browser;
  let viewerKey: string;

  before(async () => {
    ensureWebBuilt();
    [development, production] = await Promise.all([
      startTestGateway({ SIGNALS_INTERVAL_MS: '0', WEB_APP_DIR: WEB_DIST }),
      startTestGateway({ NODE_ENV: 'production', SIGNALS_INTERVAL_MS: '0', WEB_APP_DIR: WEB_DIST }),
    ]);
    viewerKey = (await apiKeysOf(production).create('viewer', 'explorer test')).key;
    browser = await launchBrowser();
  });

  const step = screenshotOnFailure(() => browser);

  after(async () => {
    await browser?.close();
    await Promise.all([development?.close(), production?.close()]);
  });

  step('development: GET /graphql offline falls back from Sandbox to the built-in explorer, which runs { health { status } }', async () => {
    const { page } = browser;
    const refused = await offline(page, development.url);
    await page.goto(`${development.url}/graphql`);
    await page.waitForURL(`${development.url}/explorer/`, { timeout: 15_000 });
    assert.ok(
      refused.some((url) => url.includes('embeddable-sandbox.cdn.apollographql.com')),
      `Sandbox's script was asked for (and refused): ${refused.join(', ')}`,
    );
    await page.locator('.graphiql-query-editor .view-lines').waitFor({ timeout: 20_000 });
    await runQuery(page, '{ health { status } }');
    const response = await waitFor(
      () => editorText(page, RESPONSE),
      (text) => text.includes('"status"'),
      'a response in the result panel',
    );
    assert.match(response, /"health":\s*\{\s*"status":\s*"ok"/);
    await browser.screenshot('explorer-offline');
    // The schema came over the same endpoint (introspection is open in development): the docs list Query's fields.
    await page.getByRole('button', { name: /Show Documentation Explorer/ }).click();
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor({ timeout: 10_000 });
    assert.deepEqual(
      browser.problems.filter((p) => !/internetdisconnected|Failed to load resource|EmbeddedSandbox/.test(p)),
      [],
      'no errors but the refused CDN',
    );
    await page.unrouteAll({ behavior: 'ignoreErrors' });
  });

  step('development: while the CDN does not answer at all, the Sandbox page shows the link to the built-in explorer', async () => {
    const page = await browser.context.newPage();
    try {
      await offline(page, development.url, 'hang');
      await page.goto(`${development.url}/graphql`, { waitUntil: 'commit' });
      const link = page.getByRole('link', { name: /Built-in explorer/ });
      await link.waitFor({ timeout: 10_000 });
      assert.ok(await page.getByRole('link', { name: 'Web app' }).isVisible(), 'the link to the web app is there too');
      // A click event rather than Playwright's click(): that waits for animation frames, which a page
      // whose parser is blocked on a script does not run; the link works all the same.
      await link.dispatchEvent('click');
      await page.waitForURL(`${development.url}/explorer/`);
      await page.locator('.graphiql-query-editor .view-lines').waitFor({ timeout: 20_000 });
    } finally {
      await page.unrouteAll({ behavior: 'ignoreErrors' });
      await page.close();
    }
  });

  step('production: GET /graphql is the built-in explorer under the CSP; the Authorization header gets a viewer in', async () => {
    const { page } = browser;
    browser.problems.length = 0;
    const refused = await offline(page, production.url);
    const answer = await page.goto(`${production.url}/graphql`);
    assert.match(answer?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    assert.equal(page.url(), `${production.url}/graphql`, 'no redirect: the explorer is the landing page');
    await page.locator('.graphiql-query-editor .view-lines').waitFor({ timeout: 20_000 });
    await runQuery(page, '{ health { status } }');
    await waitFor(
      () => editorText(page, RESPONSE),
      (text) => /"status":\s*"ok"/.test(text),
      'the status (health is open to anyone)',
    );
    await runQuery(page, '{ strategies { name } }');
    await waitFor(
      () => editorText(page, RESPONSE),
      (text) => text.includes('UNAUTHENTICATED'),
      'the refusal without a key',
    );
    // The headers editor is open from the start; the key goes there as it goes on any HTTP request.
    await replaceText(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${viewerKey}` }));
    await page.getByRole('button', { name: /Execute query/ }).click();
    const response = await waitFor(
      () => editorText(page, RESPONSE),
      (text) => text.includes('"strategies"'),
      'the strategies with the key',
    );
    assert.doesNotMatch(response, /errors/);
    await browser.screenshot('explorer-production');
    assert.deepEqual(refused, [], 'the explorer asked nothing of the internet');
    // Nothing refused by the CSP either (Chromium reports violations as console errors). What the
    // gateway refused on purpose shows as failed loads: introspection without the analyst role (400),
    // `strategies` without a key (401).
    assert.deepEqual(
      browser.problems.filter((p) => !/Failed to load resource: the server responded with a status of 40[01] /.test(p)),
      [],
    );
  });
});
