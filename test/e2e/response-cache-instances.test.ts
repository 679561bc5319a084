import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { barsOf } from '../../src/infra/response-cache/inputs.js';
import { announceChanges } from '../../src/infra/response-cache/redis-invalidations.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { PrivateRedis, findRedisServer } from '../helpers/private-redis.js';
import {
  createTestDatabase,
  realPostgresUrl,
  realRedisUrl,
  stackName,
  tempDir,
  testRedisEnv,
  type TestDatabase,
} from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const SYMBOLS = ['AAPL', 'MSFT', 'JPM', 'XOM'];
const DAY_MS = 86_400_000;

async function post(url: string, body: unknown, bypass = false): Promise<string> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bypass && { 'cache-control': 'no-cache, no-store' }) },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
  return response.text();
}

/**
 * Polls until `server`'s answer to `body` (from its cache when it has one) equals an execution of it,
 * and `check` holds for it: the change made elsewhere reached this instance's cache. Fails after 5 s.
 */
async function converges(server: TestGateway, body: unknown, check: (answer: string) => boolean): Promise<string> {
  const deadline = Date.now() + 5_000;
  let last = '';
  for (;;) {
    const cached = await post(server.url, body);
    const executed = await post(server.url, body, true);
    if (cached === executed && check(cached)) return cached;
    last = `cached ${cached.slice(0, 300)}\nexecuted ${executed.slice(0, 300)}`;
    if (Date.now() > deadline) throw new Error(`the change did not reach this instance's cache within 5 s:\n${last}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Daily bars of the seeded synthetic market, ending `daysAgo` days before today. */
async function storedBars(daysAgo: number): Promise<Bar[]> {
  const market = createSyntheticMarket({ symbols: SYMBOLS, seed: 3, historyBars: 160, startTime: new Date(Date.now() - daysAgo * DAY_MS) });
  const bars = await market.fetchBars(SYMBOLS, { lookback: 160 });
  return [...bars.values()].flat();
}

/**
 * Two instances on one PostgreSQL and one Redis, both with the response cache on: what changes on A (an
 * activation, history rows it writes) and bars written by another process that announces them (as `npm
 * run import` does) reach B's cache, whose answers then equal B's own executions.
 */
describe(
  `response cache across instances (${stackName})`,
  { skip: !(realPostgresUrl && realRedisUrl) && 'needs DATABASE_URL and REDIS_URL' },
  () => {
    let fixture: ModelsFixture;
    let database: TestDatabase;
    let a: TestGateway;
    let b: TestGateway;
    const dataB = tempDir();
    let redis: RedisConnections;

    before(async () => {
      fixture = await modelsFixture();
      await fixture.addVersion('direction-1d', 'v2', { calibrationShift: 0.5 });
      database = await createTestDatabase();
      const common = {
        ...testRedisEnv(),
        RESPONSE_CACHE: 'on',
        MODELS_DIR: fixture.dir,
        HISTORY_FLUSH_INTERVAL_MS: '100',
        OUTCOMES_INTERVAL_MS: '0',
      };
      a = await startTestGateway(common, { database, bars: await storedBars(5) });
      b = await startTestGateway({ ...common, DATA_DIR: dataB.dir }, { database });
      redis = await connectRedis({ url: realRedisUrl!, logger });
    });

    after(async () => {
      await b?.gateway.stop();
      await a?.close();
      await redis?.close();
      dataB.remove();
      fixture?.remove();
    });

    test('an activation on A, history A writes and bars another process writes reach B’s cache', async () => {
      const cache = b.gateway.responseCache!;
      const heard: string[] = [];
      cache.versions.onChange((change, origin) => heard.push(`${origin}:${'all' in change ? 'all' : change.inputs.join(',')}`));
      const predictions = { query: '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol asOf probability model { version active } } }' };
      const strategies = { query: '{ strategies { name activeVersion { version } } }' };
      const trends = { query: '{ confidenceTrends(symbols: ["JPM"]) { symbol samples } }' };
      // B's own predictions are recorded (history B writes, within HISTORY_FLUSH_INTERVAL_MS): let that
      // write land before caching what reads history.
      await post(b.url, predictions);
      await new Promise((resolve) => setTimeout(resolve, 600));
      for (const body of [predictions, strategies, trends]) await post(b.url, body);
      const hits = cache.stats.hits;
      for (const body of [predictions, strategies, trends]) await post(b.url, body);
      assert.equal(cache.stats.hits, hits + 3, 'B answers all three from its cache');

      // 1. Model activation on A: B's registry follows (SERVING_CHANGED), and its cache with it.
      const serving = JSON.parse(await post(a.url, strategies)) as {
        data: { strategies: Array<{ name: string; activeVersion: { version: string } }> };
      };
      const current = serving.data.strategies.find((s) => s.name === 'direction-1d')!.activeVersion.version;
      const other = current === 'v1' ? 'v2' : 'v1';
      await post(a.url, { query: `mutation { activateModelVersion(strategy: "direction-1d", version: "${other}") { name } }` });
      await converges(b, strategies, (answer) => answer.includes(`"name":"direction-1d","activeVersion":{"version":"${other}"}`));
      await converges(b, predictions, (answer) => answer.includes(`"version":"${other}"`));

      // 2. History written by A (JPM's served prediction, flushed by A's writer): B hears it from A.
      await post(a.url, { query: '{ predictions(symbols: ["JPM"]) { symbol } }' });
      await converges(b, trends, (answer) => !answer.includes('"samples":0'));
      assert.ok(
        heard.some((h) => h === 'remote:history'),
        `B heard A's history write: ${heard.join(' | ')}`,
      );

      // 3. A newer bar for AAPL, written by another process that announces it (what `npm run import` does).
      const before = JSON.parse(await post(b.url, predictions)) as { data: { predictions: Array<{ asOf: string }> } };
      const newest = new Date(Date.parse(before.data.predictions[0]!.asOf) + DAY_MS);
      const store = new BarsRepository(a.gateway.database.db);
      const [last] = (await store.fetchBars(['AAPL'], { lookback: 1 })).get('AAPL')!;
      const up = (price: number) => price * 1.01;
      await store.upsert([
        {
          ...last!,
          time: newest,
          open: up(last!.open),
          high: up(last!.high),
          low: up(last!.low),
          close: up(last!.close),
          adjClose: up(last!.adjClose),
        },
      ]);
      await announceChanges(redis.command, a.gateway.config.keyPrefix, [barsOf('AAPL')]);
      await converges(b, predictions, (answer) => answer.includes(`"asOf":"${newest.toISOString()}"`));
      assert.ok(
        heard.some((h) => h === 'remote:bars:AAPL'),
        heard.join(' | '),
      );
    });
  },
);

const binary = findRedisServer();

/**
 * Fail closed: while Redis is away an instance cannot hear other instances' changes, so its response
 * cache serves nothing and stores nothing; requests are executed as without a cache. When Redis is back
 * it serves again, without what it held before.
 */
describe(
  `response cache through a Redis outage (private redis-server; database ${stackName.split('+')[0]})`,
  { skip: binary ? false : 'no redis-server binary' },
  () => {
    let redis: PrivateRedis;
    let server: TestGateway;

    before(async () => {
      redis = new PrivateRedis(binary!);
      await redis.start();
      server = await startTestGateway({ RESPONSE_CACHE: 'on', REDIS_URL: redis.url, SYNTHETIC_TICK_MS: '0' });
    });

    after(async () => {
      await server?.close();
      await redis?.kill();
    });

    test('down: every request executed, none stored; back: served from the cache again', { timeout: 60_000 }, async () => {
      const cache = server.gateway.responseCache!;
      const until = async (what: string, condition: () => boolean, timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        while (!condition()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      };
      await until('the cache to serve', () => cache.available, 5_000);
      const body = { query: '{ predictions(symbols: ["AAPL"]) { symbol asOf probability } }' };
      const answer = await post(server.url, body);
      await post(server.url, body);
      const hits = cache.stats.hits;
      assert.ok(hits >= 1);

      await redis.kill();
      await until('the cache to stop serving', () => !cache.available, 5_000);
      for (let i = 0; i < 3; i++) assert.equal(await post(server.url, body), answer);
      assert.equal(cache.stats.hits, hits, 'nothing served from the cache while Redis is away');
      assert.equal(cache.stats.entries, 0);
      assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^sibyl_response_cache_available 0$/m);

      await redis.start();
      await until('the cache to serve again', () => cache.available, 30_000);
      await post(server.url, body);
      assert.equal(cache.stats.hits, hits, 'the first request after the outage is executed (what was held is gone)');
      await post(server.url, body);
      assert.equal(cache.stats.hits, hits + 1);
    });
  },
);
