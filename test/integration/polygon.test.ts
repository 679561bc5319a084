import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { LiveVendorFeed } from '../../src/infra/market-data/live-vendor.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createPolygonFeed } from '../../src/infra/market-data/polygon.js';
import { sessionClose } from '../../src/infra/market-data/trading-calendar.js';
import { createVendorHttpClient } from '../../src/infra/market-data/vendor-http.js';
import { nextBar, nextWeekdays, walk, weekdays, type FakeBar } from '../helpers/fake-vendor.js';
import { FakePolygon } from '../helpers/fake-polygon.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

const SYMBOLS = ['AAPL', 'MSFT', 'SPY'];
// 60 sessions ending three weeks ago: every "new" session after them is long final (extended hours included).
const DATES = weekdays(60, 21);

describe(`Polygon adapter against a local fake Polygon (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let repository: BarsRepository;
  let fake: FakePolygon;
  let feed: LiveVendorFeed | undefined;
  let logLines: string[];
  let announced: Bar[][];

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    repository = new BarsRepository(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate market_bars`.execute(database.db);
    fake = await new FakePolygon({ pageSize: 25 }).start();
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(DATES, i + 1, 100 + 50 * i)));
    logLines = [];
    announced = [];
  });
  afterEach(async () => {
    await feed?.stop();
    feed = undefined;
    await fake.close();
  });

  function makeFeed(
    overrides: { apiKey?: string; streamUrl?: string | null; now?: () => Date; maxSymbols?: number; retries?: number } = {},
  ): LiveVendorFeed {
    const destination = new PassThrough();
    destination.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
    const logger = createLogger({ level: 'debug', format: 'json', destination });
    const http = createVendorHttpClient({
      name: 'polygon',
      timeoutMs: 2_000,
      retries: overrides.retries ?? 2,
      backoffMs: 10,
      breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 1_000, volumeThreshold: 100 },
      logger,
    });
    feed = createPolygonFeed({
      apiKey: overrides.apiKey ?? fake.apiKey,
      restUrl: fake.restUrl,
      streamUrl: overrides.streamUrl === null ? undefined : (overrides.streamUrl ?? fake.streamUrl),
      backfillDays: 400,
      symbols: SYMBOLS,
      maxSymbols: overrides.maxSymbols,
      store: repository,
      http,
      logger,
      reconnect: { minMs: 50, maxMs: 200 },
      ...(overrides.now && { now: overrides.now }),
    });
    return feed;
  }

  const storedBars = async (symbol: string) => (await repository.fetchBars([symbol], { lookback: 1_000 })).get(symbol) ?? [];
  const countRows = async () => Number((await sql<{ n: string }>`select count(*) as n from market_bars`.execute(database.db)).rows[0]!.n);
  const lastOf = (symbol: string): FakeBar => fake.bars.get(symbol)!.at(-1)!;
  /** A session closes: its daily bars are on REST; the stream only shows minute aggregates of it. */
  const closeSession = (date: string, move = 0.01) => {
    for (const symbol of SYMBOLS) fake.addBars(symbol, [nextBar(lastOf(symbol), date, move)]);
  };
  const keyLogged = () => logLines.some((l) => l.includes(fake.apiKey));
  const dates = (batches: Bar[][]) => batches.map((batch) => [...new Set(batch.map((b) => b.time.toISOString().slice(0, 10)))]);

  test('backfill pages each ticker by next_url, raw prices and split-adjusted closes, key in a Bearer header only, source polygon', async () => {
    const aapl = fake.bars.get('AAPL')!;
    const split = 30; // a 2:1 split: raw prices halve, adjusted=true scales the bars before it
    fake.bars.set(
      'AAPL',
      aapl.map((bar, i) => (i < split ? { ...bar, factor: 0.5 } : { ...bar, o: bar.o / 2, h: bar.h / 2, l: bar.l / 2, c: bar.c / 2 })),
    );
    const polygon = makeFeed();
    assert.equal(await polygon.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);
    // 60 bars at 25 per page: 3 pages per ticker and adjustment.
    assert.equal(fake.requests.length, SYMBOLS.length * 2 * 3);
    assert.equal(fake.requests.filter((r) => r.query.cursor).length, SYMBOLS.length * 2 * 2, 'pages after the first follow next_url');
    assert.ok(fake.requests.every((r) => r.authorization === `Bearer ${fake.apiKey}` && !('apiKey' in r.query)));
    assert.deepEqual(new Set(fake.requests.map((r) => r.query.adjusted ?? 'from next_url')), new Set(['true', 'false', 'from next_url']));

    const stored = await storedBars('AAPL');
    assert.deepEqual(
      stored.map((b) => b.time.toISOString().slice(0, 10)),
      DATES,
      'session dates in New York',
    );
    assert.ok(stored.every((b) => b.source === 'polygon'));
    const [before, after] = [stored[split - 1]!, stored[split]!];
    assert.ok(after.close / before.close < 0.55, 'raw close halves across the split');
    assert.ok(
      Math.abs(after.adjClose / before.adjClose - 1) < 0.05,
      `adjusted return across the split: ${after.adjClose / before.adjClose}`,
    );
    assert.equal(polygon.health().status, 'ok');
    assert.equal(await polygon.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length, 'a second backfill stores nothing twice');
  });

  test('REST 401 Unknown API Key: a clear log line, degraded health naming it, nothing stored, not retried, key never logged', async () => {
    const polygon = makeFeed({ apiKey: 'wrong-key-123' });
    assert.equal(await polygon.backfill(), false);
    assert.equal(await countRows(), 0);
    assert.equal(polygon.health().status, 'degraded');
    assert.match(polygon.health().detail, /REST auth failed \(HTTP 401\): check POLYGON_API_KEY/);
    assert.ok(logLines.some((l) => /"level":50/.test(l) && /REST auth failed/.test(l)));
    assert.equal(fake.requests.length, 1, '401 is not retried');
    assert.ok(!logLines.some((l) => l.includes('wrong-key-123')));
  });

  test('stream auth_failed and a plan without WebSockets: health and an error line say so; no subscribe; key never logged', async () => {
    const other = await new FakePolygon({ apiKey: 'another-key' }).start();
    const noWs = await new FakePolygon({ apiKey: fake.apiKey, streamNotEntitled: true }).start();
    try {
      const polygon = makeFeed({ streamUrl: other.streamUrl });
      assert.equal(await polygon.backfill(), true);
      polygon.start(() => {});
      await until(() => /stream auth failed/.test(polygon.health().detail), 'auth_failed in health');
      assert.equal(polygon.health().status, 'degraded');
      assert.ok(logLines.some((l) => /"level":50/.test(l) && /stream auth failed.*check POLYGON_API_KEY/.test(l)));
      assert.ok(!other.received.some((m) => (m as { action?: string }).action === 'subscribe'));
      await feed!.stop();

      const plain = makeFeed({ streamUrl: noWs.streamUrl });
      await plain.backfill();
      plain.start(() => {});
      await until(() => /stream not authorized/.test(plain.health().detail), 'not authorized in health');
      assert.ok(!keyLogged(), 'the key is never logged');
    } finally {
      await feed?.stop();
      feed = undefined;
      await other.close();
      await noWs.close();
    }
  });

  test('throttling: HTTP 429 is retried; the refusal inside a 200 body fails the catch-up with "throttled", and the next one recovers', async () => {
    fake.throttle = { remaining: 2, inBody: false };
    const polygon = makeFeed();
    assert.equal(await polygon.backfill(), true);
    assert.equal(fake.requests.filter((r) => r.status === 429).length, 2);

    fake.throttle = { remaining: 100, inBody: true };
    assert.equal(await polygon.backfill(), false);
    assert.match(polygon.health().detail, /REST throttled \(in the body: "You've exceeded the maximum requests per minute/);
    assert.ok(logLines.some((l) => /"level":50/.test(l) && /REST throttled/.test(l)));
    fake.throttle = { remaining: 0, inBody: false };
    assert.equal(await polygon.backfill(), true);
    assert.doesNotMatch(polygon.health().detail, /throttled/);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);
  });

  test('malformed payloads: a bad REST page fails the catch-up (not retried); bad stream frames are skipped', async () => {
    fake.malformed = 1;
    const polygon = makeFeed();
    assert.equal(await polygon.backfill(), false);
    assert.match(polygon.health().detail, /malformed response body/);
    assert.equal(fake.requests.length, 1);
    assert.equal(await polygon.backfill(), true);

    polygon.start((bars) => void announced.push([...bars]));
    await until(() => polygon.health().status === 'ok', 'the stream subscribed');
    await polygon.idle();
    fake.sendRaw('not json');
    fake.sendRaw('{"ev":"AM"}');
    fake.sendRaw(
      JSON.stringify([{ ev: 'AM', sym: 'AAPL', o: 'x' }, { ev: 'AM', sym: 'aapl!', o: 1, h: 1, l: 1, c: 1, v: 1, s: 1, e: 2 }, {}]),
    );
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    closeSession(date);
    fake.sendMinute(['AAPL'], `${date}T15:00:00Z`);
    await until(() => announced.length === 1, 'the session after the bad frames');
    assert.ok(logLines.filter((l) => /malformed stream message skipped/.test(l)).length >= 4);
    assert.equal(polygon.health().status, 'ok');
  });

  test('a disconnect mid-stream misses 3 sessions: after reconnecting they are backfilled, stored once, announced in order', async () => {
    const polygon = makeFeed();
    await polygon.backfill();
    polygon.start(async (bars) => {
      announced.push([...bars]);
      await new Promise((r) => setTimeout(r, 20)); // a slow listener still sees the sessions in order
    });
    await until(() => polygon.health().status === 'ok', 'the stream subscribed');
    await polygon.idle();
    const [d1, d2, d3, d4, d5] = nextWeekdays(DATES.at(-1)!, 5) as [string, string, string, string, string];
    closeSession(d1);
    fake.sendMinute(SYMBOLS, `${d1}T19:59:00Z`);
    await until(() => announced.length === 1, 'the first session');

    fake.acceptingStream = false;
    fake.dropStream();
    await until(() => polygon.health().status === 'degraded', 'the drop noticed');
    for (const date of [d2, d3, d4]) closeSession(date, -0.005);
    fake.acceptingStream = true;
    await until(() => announced.length === 4, 'the 3 missed sessions', 10_000);
    closeSession(d5);
    fake.sendMinute(SYMBOLS, `${d5}T14:30:00Z`);
    await until(() => announced.length === 5, 'the next session');
    await polygon.idle();
    assert.deepEqual(dates(announced), [[d1], [d2], [d3], [d4], [d5]]);
    assert.ok(announced.every((batch) => batch.length === SYMBOLS.length));
    assert.equal(await countRows(), SYMBOLS.length * (DATES.length + 5), 'each bar stored once');
    assert.ok(logLines.some((l) => /stream closed/.test(l) && /reconnecting in/.test(l)));
    assert.ok(
      announced.flat().every((b) => b.volume === 1_234_567),
      'daily bars from REST, never the minute aggregates',
    );
  });

  test('duplicate and out-of-order bars (in REST pages and repeated minute aggregates): stored once, in order, announced once', async () => {
    fake.disorder = true;
    const polygon = makeFeed();
    assert.equal(await polygon.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);
    assert.deepEqual(
      (await storedBars('MSFT')).map((b) => b.time.toISOString().slice(0, 10)),
      DATES,
    );
    polygon.start((bars) => void announced.push([...bars]));
    await until(() => polygon.health().status === 'ok', 'the stream subscribed');
    await polygon.idle();
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    closeSession(date);
    for (let i = 0; i < 3; i++) fake.sendMinute(SYMBOLS, `${date}T15:0${i}:00Z`);
    fake.sendMinute(SYMBOLS, `${DATES[10]}T15:00:00Z`); // an old session's aggregate, late
    await until(() => announced.length === 1, 'the new session');
    await new Promise((r) => setTimeout(r, 100));
    await polygon.idle();
    assert.equal(announced.length, 1);
    assert.equal(await countRows(), SYMBOLS.length * (DATES.length + 1));
  });

  test('trading calendar: a session is stored only after its extended hours; an aggregate of the next session catches up the one before', async () => {
    const [d1, d2] = nextWeekdays(DATES.at(-1)!, 2) as [string, string];
    let clock = new Date(sessionClose(new Date(`${d1}T00:00:00Z`)).getTime() - 3_600_000); // 15:00 New York on d1
    const polygon = makeFeed({ now: () => clock });
    await polygon.backfill();
    polygon.start((bars) => void announced.push([...bars]));
    await until(() => polygon.health().status === 'ok', 'the stream subscribed');
    await polygon.idle();
    closeSession(d1); // REST already has the day so far
    fake.sendMinute(['AAPL'], new Date(clock.getTime() - 60_000).toISOString());
    await new Promise((r) => setTimeout(r, 100));
    await polygon.idle();
    assert.equal(await polygon.backfill(), true);
    assert.equal(announced.length, 0, 'the day so far is neither stored nor announced');
    assert.equal((await storedBars('AAPL')).at(-1)!.time.toISOString().slice(0, 10), DATES.at(-1));

    clock = new Date(`${d2}T14:00:00Z`); // 09:00 New York on d2: pre-market aggregates say d1 is over
    fake.sendMinute(['AAPL'], clock.toISOString());
    await until(() => announced.length === 1, 'd1 caught up');
    assert.deepEqual(dates(announced), [[d1]]);
    assert.ok(logLines.some((l) => new RegExp(`session ${d1} has closed`).test(l)));
  });

  test('follows the interest set up to the symbol limit: past it a clear error and degraded health; AM.* subscribe and unsubscribe', async () => {
    fake.addBars('QQQ', walk(DATES, 9, 300));
    fake.addBars('IWM', walk(DATES, 10, 200));
    const polygon = makeFeed({ maxSymbols: 4 });
    await polygon.backfill();
    polygon.start(() => {});
    await until(() => polygon.health().status === 'ok', 'the stream subscribed');
    await polygon.idle();
    polygon.follow(['QQQ', 'IWM', 'AAPL']);
    await polygon.idle();
    assert.deepEqual([...polygon.symbols], [...SYMBOLS, 'QQQ']);
    assert.equal((await storedBars('QQQ')).length, DATES.length, 'QQQ backfilled');
    assert.equal((await storedBars('IWM')).length, 0, 'IWM is past the limit');
    assert.equal(polygon.health().status, 'degraded');
    assert.match(polygon.health().detail, /symbol limit: subscribers want 5 symbols, over the limit of 4; not following IWM/);
    assert.ok(logLines.some((l) => /"level":50/.test(l) && /symbol limit/.test(l)));
    await until(() => fake.subscribedSymbols.has('QQQ'), 'AM.QQQ subscribed');
    assert.ok(fake.received.some((m) => JSON.stringify(m) === JSON.stringify({ action: 'subscribe', params: 'AM.QQQ' })));

    polygon.follow([]);
    await until(() => !fake.subscribedSymbols.has('QQQ'), 'AM.QQQ unsubscribed');
    assert.deepEqual([...polygon.symbols], SYMBOLS);
    assert.equal(polygon.health().status, 'ok');
  });

  test('without a stream URL (a plan with no WebSocket) it polls after each session close; health says so', async () => {
    const polygon = makeFeed({ streamUrl: null });
    assert.equal(await polygon.backfill(), true);
    polygon.start(() => {});
    assert.equal(polygon.health().status, 'ok');
    assert.match(polygon.health().detail, /polygon: polling after each session close \(no stream\); 3 symbols, REST only/);
  });
});
