import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ensureWebBuilt, WEB_DIST } from '../helpers/browser.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/** How the gateway serves the web app at `/`, without a browser: built, not built, and turned off. */
describe('web app serving', { timeout: 120_000 }, () => {
  const servers: TestGateway[] = [];
  after(async () => {
    // Every one, even when one fails to drain, so none keeps the process alive.
    const results = await Promise.allSettled(servers.map((server) => server.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  });

  test('serves the build at /, with hashed assets cached for good, and GraphQL beside it', async () => {
    ensureWebBuilt();
    const server = await startTestGateway({ WEB_APP_DIR: WEB_DIST });
    servers.push(server);
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    const html = await page.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(script, 'index.html loads a hashed script');
    const asset = await fetch(`${server.url}${script}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    await asset.arrayBuffer(); // read every body: an unread one keeps its connection busy and stalls the drain
    assert.ok(readdirSync(path.join(WEB_DIST, 'assets')).length > 0);
    const graphql = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ symbols }' }),
    });
    const body = (await graphql.json()) as { data: { symbols: string[] } };
    assert.ok(body.data.symbols.includes('AAPL'));
    const live = await fetch(`${server.url}/health/live`);
    assert.equal(live.status, 200);
    await live.arrayBuffer();
  });

  test('without a build the gateway starts and / says how to build it; WEB_APP=false serves nothing', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'sibyl-no-web-'));
    try {
      const server = await startTestGateway({ WEB_APP_DIR: empty });
      servers.push(server);
      const page = await fetch(`${server.url}/`);
      assert.equal(page.status, 503);
      assert.match(await page.text(), /npm run web:build/);
      const off = await startTestGateway({ WEB_APP: 'false', WEB_APP_DIR: WEB_DIST });
      servers.push(off);
      const none = await fetch(`${off.url}/`);
      assert.equal(none.status, 404);
      await none.arrayBuffer();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
