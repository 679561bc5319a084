import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.SIBYL_CHROMIUM ?? '/usr/bin/chromium';
const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
export const WEB_DIST = path.join(projectRoot, 'web', 'dist');
export const ARTIFACTS = path.join(projectRoot, 'test-artifacts', 'browser');

/**
 * Why browser tests cannot run here, or undefined when they can. Without Chromium they skip with this
 * reason, unless SIBYL_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure, not a skip.
 */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const reason = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set SIBYL_CHROMIUM)`;
  if (process.env.SIBYL_REQUIRE_BROWSER === '1') throw new Error(`SIBYL_REQUIRE_BROWSER=1 but ${reason}`);
  return reason;
}

/** Builds web/dist when it is missing or older than web/src, as `npm start` does. */
export function ensureWebBuilt(): void {
  execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/web-build.ts', '--if-stale'], { cwd: projectRoot, stdio: 'inherit' });
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Page errors and console errors seen so far (the app should produce none on a healthy gateway). */
  problems: string[];
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile in a temp dir, quiet (no background networking, no QUIC). */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'sibyl-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1360, height: 900 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    page,
    problems,
    async screenshot(name) {
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Whether a canvas has something drawn on it: counts pixels that are not fully transparent. */
export async function paintedPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (element) => {
    // Typed structurally: the test project has no DOM types.
    type Canvas = {
      width: number;
      height: number;
      getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
    };
    const c = element as unknown as Canvas;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
    return painted;
  });
}

/** Polls `read` until `done` holds for its value (resolves with it), or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    value = await read();
  }
  return value;
}

/**
 * `test()` that leaves a screenshot of what the page showed when it fails (FAILED-<name>.png), for
 * the browser of the suite (read when the test runs: suites launch it in `before`).
 */
export function screenshotOnFailure(browser: () => Browser | undefined) {
  return (name: string, body: () => Promise<void>) =>
    test(name, async () => {
      try {
        await body();
      } catch (error) {
        await browser()
          ?.screenshot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`)
          .catch(() => undefined);
        throw error;
      }
    });
}
