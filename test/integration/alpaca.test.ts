import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createAlpacaFeed, type AlpacaFeed } from '../../src/infra/market-data/alpaca.js';
import { sessionClose } from '../../src/infra/market-data/alpaca-protocol.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createVendorHttpClient } from '../../src/infra/market-data/vendor-http.js';
import { FakeAlpaca } from '../helpers/fake-alpaca.js';
import { nextBar, nextWeekdays, walk, weekdays, type FakeBar } from '../helpers/fake-vendor.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

const SYMBOLS = ['AAPL', 'MSFT', 'SPY'];
// 60 sessions ending three weeks ago: the stream's "new" sessions after them are all in the past (final).
const DATES = weekdays(60, 21);

describe(`Alpaca adapter against a local fake Alpaca (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let repository: BarsRepository;
  let fake: FakeAlpaca;
  let feed: AlpacaFeed | undefined;
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
    fake = await new FakeAlpaca({ pageSize: 25 }).start();
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(DATES, i + 1, 100 + 50 * i)));
    logLines = [];
    announced = [];
  });
  afterEach(async () => {
    await feed?.stop();
    feed = undefined;
    await fake.close();
  });

  function makeFeed(overrides: { secretKey?: string; streamUrl?: string; now?: () => Date } = {}): AlpacaFeed {
    const destination = new PassThrough();
    destination.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
    const logger = createLogger({ level: 'debug', format: 'json', destination });
    const http = createVendorHttpClient({
      name: 'alpaca',
      timeoutMs: 2_000,
      retries: 2,
      backoffMs: 10,
      breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 1_000, volumeThreshold: 100 },
      logger,
    });
    feed = createAlpacaFeed({
      keyId: fake.keyId,
      secretKey: overrides.secretKey ?? fake.secretKey,
      feed: 'iex',
      dataUrl: fake.restUrl,
      streamUrl: overrides.streamUrl ?? `${fake.streamUrl}/v2/iex`,
      backfillDays: 400,
      symbols: SYMBOLS,
      store: repository,
      http,
      logger,
      reconnect: { minMs: 50, maxMs: 200 },
      ...(overrides.now && { now: overrides.now }),
    });
    return feed;
  }

  const storedCloses = async (symbol: string) => (await repository.fetchBars([symbol], { lookback: 1_000 })).get(symbol) ?? [];
  const countRows = async () => Number((await sql<{ n: string }>`select count(*) as n from market_bars`.execute(database.db)).rows[0]!.n);
  const lastOf = (symbol: string): FakeBar => fake.bars.get(symbol)!.at(-1)!;
  /** One session's bars for every symbol: kept for REST and sent in one frame, as Alpaca batches data points. */
  const publishSession = (date: string, move = 0.01) => {
    const entries = SYMBOLS.map((symbol) => ({ symbol, bar: nextBar(lastOf(symbol), date, move) }));
    for (const { symbol, bar } of entries) fake.addBars(symbol, [bar]);
    fake.sendDaily(entries);
  };

  test('backfill pages through every symbol with many symbols per request, raw prices and adjusted closes, source alpaca', async () => {
    // A 2:1 split in the middle of AAPL's window: raw prices halve, adjustment=all scales the bars before it.
    const aapl = fake.bars.get('AAPL')!;
    const split = 30;
    fake.bars.set(
      'AAPL',
      aapl.map((bar, i) => (i < split ? { ...bar, factor: 0.5 } : { ...bar, o: bar.o / 2, h: bar.h / 2, l: bar.l / 2, c: bar.c / 2 })),
    );
    const alpaca = makeFeed();
    assert.equal(await alpaca.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);
    const bars = fake.requests.filter((r) => r.path === '/v2/stocks/bars');
    // 180 bars at 25 per page: 8 pages per adjustment, each request asking for all three symbols.
    assert.equal(bars.length, 16);
    assert.ok(bars.every((r) => r.query.symbols === 'AAPL,MSFT,SPY' && r.query.timeframe === '1Day' && r.query.feed === 'iex'));
    assert.equal(bars.filter((r) => r.query.page_token).length, 14, 'every page after the first asks with next_page_token');
    assert.deepEqual(new Set(bars.map((r) => r.query.adjustment)), new Set(['raw', 'all']));

    const stored = await storedCloses('AAPL');
    assert.equal(stored.length, DATES.length);
    assert.ok(stored.every((b) => b.source === 'alpaca'));
    assert.deepEqual(
      stored.map((b) => b.time.toISOString().slice(0, 10)),
      DATES,
      'session dates in New York, stamped 00:00 UTC',
    );
    const before = stored[split - 1]!;
    const after = stored[split]!;
    // Raw close halves across the split; the adjusted close moves as the market did (under 5%).
    assert.ok(after.close / before.close < 0.55);
    assert.ok(
      Math.abs(after.adjClose / before.adjClose - 1) < 0.05,
      `adjusted return across the split: ${after.adjClose / before.adjClose}`,
    );
    assert.equal(alpaca.health().status, 'ok', 'the catch-up worked; the stream is not started yet');

    // A second backfill rewrites the same rows: nothing stored twice.
    assert.equal(await alpaca.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);
  });

  test('REST 403: a clear log line, degraded health naming the auth failure, nothing stored, no throw', async () => {
    const alpaca = makeFeed({ secretKey: 'wrong-secret' });
    assert.equal(await alpaca.backfill(), false);
    assert.equal(await countRows(), 0);
    const health = alpaca.health();
    assert.equal(health.status, 'degraded');
    assert.match(health.detail, /REST auth failed \(HTTP 403\)/);
    assert.ok(logLines.some((l) => /"level":50/.test(l) && /REST auth failed \(HTTP 403\)/.test(l)));
    assert.equal(fake.requests.length, 1, '403 is not retried');
    assert.ok(!logLines.some((l) => l.includes('wrong-secret')), 'the secret is never logged');
  });

  test('stream 402: the REST side works, the stream says auth failed; health and log say so; keys never logged', async () => {
    // A second fake whose stream knows another secret: REST accepts our keys, the stream refuses them.
    const streamOnly = await new FakeAlpaca({ keyId: fake.keyId, secretKey: 'another-secret' }).start();
    try {
      const alpaca = makeFeed({ streamUrl: `${streamOnly.streamUrl}/v2/iex` });
      assert.equal(await alpaca.backfill(), true);
      alpaca.start(() => {});
      await until(() => /402/.test(alpaca.health().detail), 'the stream error in health');
      assert.equal(alpaca.health().status, 'degraded');
      assert.match(alpaca.health().detail, /stream error 402 auth failed/);
      assert.ok(logLines.some((l) => /"level":50/.test(l) && /402 auth failed: check ALPACA_KEY_ID/.test(l)));
      assert.ok(streamOnly.received.some((m) => (m as { action?: string }).action === 'auth'));
      assert.ok(!streamOnly.received.some((m) => (m as { action?: string }).action === 'subscribe'), 'no subscribe after a refused auth');
      assert.ok(!logLines.some((l) => l.includes(fake.secretKey)), 'the secret is never logged');
    } finally {
      await feed?.stop();
      feed = undefined;
      await streamOnly.close();
    }
  });

  test('429: retried after Retry-After; throttled past the retries, health says throttled and the next catch-up recovers', async () => {
    fake.throttle = { remaining: 2, retryAfterS: 0 };
    const alpaca = makeFeed();
    assert.equal(await alpaca.backfill(), true);
    assert.equal(fake.requests.filter((r) => r.status === 429).length, 2);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length);

    fake.throttle = { remaining: 100, retryAfterS: 30 };
    assert.equal(await alpaca.backfill(), false);
    assert.match(alpaca.health().detail, /REST throttled \(HTTP 429/);
    assert.ok(logLines.some((l) => /REST throttled/.test(l)));
    fake.throttle = { remaining: 0, retryAfterS: 0 };
    assert.equal(await alpaca.backfill(), true);
    assert.doesNotMatch(alpaca.health().detail, /throttled/);
  });

  test('malformed payloads: a bad REST body fails the catch-up (not retried); bad stream frames are skipped', async () => {
    fake.malformed = 1;
    const alpaca = makeFeed();
    assert.equal(await alpaca.backfill(), false);
    assert.match(alpaca.health().detail, /malformed response body/);
    assert.equal(await alpaca.backfill(), true);

    alpaca.start((bars) => void announced.push([...bars]));
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle(); // the catch-up after subscribing is done: sessions published from now on arrive by stream
    fake.sendRaw('not json');
    fake.sendRaw('{"T":"d"}');
    fake.sendRaw(
      JSON.stringify([
        { T: 'd', S: 'AAPL', o: 'x' },
        { T: 'd', S: 'aapl!', o: 1, h: 1, l: 1, c: 1, v: 1, t: '2020-01-01T05:00:00Z' },
      ]),
    );
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    fake.publishDaily('AAPL', nextBar(lastOf('AAPL'), date));
    await until(async () => (await storedCloses('AAPL')).at(-1)!.time.toISOString().startsWith(date), 'the valid bar after the bad ones');
    assert.ok(logLines.filter((l) => /malformed stream message skipped/.test(l)).length >= 3);
    assert.equal(alpaca.health().status, 'ok');
  });

  test('a dropped stream misses 3 sessions: after reconnecting they are stored once and announced one session at a time, in order', async () => {
    const alpaca = makeFeed();
    await alpaca.backfill();
    alpaca.start(async (bars) => {
      announced.push([...bars]);
      await new Promise((r) => setTimeout(r, 20)); // a slow listener must still see the sessions in order
    });
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle(); // the catch-up after subscribing is done: sessions published from now on arrive by stream
    const [d1, d2, d3, d4, d5] = nextWeekdays(DATES.at(-1)!, 5) as [string, string, string, string, string];
    publishSession(d1);
    await until(() => announced.length === 1, 'the first live bar');

    fake.acceptingStream = false;
    fake.dropStream();
    await until(() => alpaca.health().status === 'degraded', 'the drop noticed');
    for (const date of [d2, d3, d4]) publishSession(date, -0.005);
    fake.acceptingStream = true;
    await until(() => announced.length === 4, 'the 3 missed sessions announced', 10_000);
    publishSession(d5);
    await until(() => announced.length === 5, 'the next live bar');
    await alpaca.idle();

    const sessions = announced.map((batch) => [...new Set(batch.map((b) => b.time.toISOString().slice(0, 10)))]);
    assert.deepEqual(
      sessions,
      [[d1], [d2], [d3], [d4], [d5]],
      JSON.stringify(announced.map((b) => b.map((x) => `${x.symbol}@${x.time.toISOString().slice(0, 10)}`))),
    );
    assert.ok(announced.every((batch) => batch.length === SYMBOLS.length));
    assert.equal(await countRows(), SYMBOLS.length * (DATES.length + 5), 'each bar stored once');
    const aapl = await storedCloses('AAPL');
    assert.deepEqual(
      aapl.slice(-5).map((b) => b.close),
      fake.bars
        .get('AAPL')!
        .slice(-5)
        .map((b) => Math.round(b.c * 10_000) / 10_000),
    );
    assert.ok(logLines.some((l) => /stream closed/.test(l) && /reconnecting in/.test(l)));
  });

  test('duplicate and out-of-order stream bars: stored once, announced once', async () => {
    const alpaca = makeFeed();
    await alpaca.backfill();
    alpaca.start((bars) => void announced.push([...bars]));
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle(); // the catch-up after subscribing is done: sessions published from now on arrive by stream
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    const bar = nextBar(lastOf('MSFT'), date);
    fake.publishDaily('MSFT', bar);
    fake.sendDaily([{ symbol: 'MSFT', bar }]); // the same bar again
    fake.sendDaily([{ symbol: 'MSFT', bar: { ...fake.bars.get('MSFT')!.at(-10)!, c: fake.bars.get('MSFT')!.at(-10)!.c } }]); // an old one, late
    await until(() => announced.length === 1, 'the new bar announced');
    await alpaca.idle();
    await new Promise((r) => setTimeout(r, 100));
    await alpaca.idle();
    assert.equal(announced.length, 1);
    assert.equal(announced[0]![0]!.close, Math.round(bar.c * 10_000) / 10_000);
    assert.equal(await countRows(), SYMBOLS.length * DATES.length + 1);
    const msft = await storedCloses('MSFT');
    assert.equal(msft.at(-1)!.time.toISOString().slice(0, 10), date);
  });

  test('follows the interest set: a symbol subscribers want is backfilled and subscribed, then unsubscribed when they leave; the universe stays', async () => {
    fake.addBars('QQQ', walk(DATES, 9, 300));
    const alpaca = makeFeed();
    await alpaca.backfill();
    alpaca.start((bars) => void announced.push([...bars]));
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle();
    assert.equal((await storedCloses('QQQ')).length, 0);

    alpaca.follow(['QQQ', 'AAPL']);
    await alpaca.idle();
    assert.equal((await storedCloses('QQQ')).length, DATES.length, 'backfilled');
    await until(
      () => fake.received.some((m) => JSON.stringify(m) === JSON.stringify({ action: 'subscribe', dailyBars: ['QQQ'] })),
      'the subscribe for QQQ',
    );
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    const bar = nextBar(lastOf('QQQ'), date);
    fake.addBars('QQQ', [bar]);
    await new Promise((r) => setTimeout(r, 50));
    fake.sendDaily([{ symbol: 'QQQ', bar }]);
    await until(async () => (await storedCloses('QQQ')).at(-1)!.time.toISOString().startsWith(date), 'the streamed QQQ bar');

    alpaca.follow([]);
    await until(
      () => fake.received.some((m) => JSON.stringify(m) === JSON.stringify({ action: 'unsubscribe', dailyBars: ['QQQ'] })),
      'the unsubscribe',
    );
    assert.deepEqual([...alpaca.symbols], SYMBOLS, 'the configured universe stays');
  });

  test('a history that ended long ago (fixed fixture dates, nothing in the window) is read whole, and a gap after it is filled from its end', async () => {
    await fake.close();
    fake = await new FakeAlpaca({ pageSize: 50 }).start();
    const old = nextWeekdays('2024-01-01', 120);
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(old, i + 1)));
    const alpaca = makeFeed(); // a 400-day window ending today: 2024 lies outside it
    assert.equal(await alpaca.backfill(), true);
    assert.equal(await countRows(), SYMBOLS.length * old.length);
    alpaca.start((bars) => void announced.push([...bars]));
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle();
    const [d1, d2, d3] = nextWeekdays(old.at(-1)!, 3) as [string, string, string];
    for (const date of [d1, d2]) for (const symbol of SYMBOLS) fake.addBars(symbol, [nextBar(lastOf(symbol), date)]); // missed
    const entries = SYMBOLS.map((symbol) => ({ symbol, bar: nextBar(lastOf(symbol), d3) }));
    for (const { symbol, bar } of entries) fake.addBars(symbol, [bar]);
    fake.sendDaily(entries);
    await until(() => announced.length === 3, 'the two missed sessions and the streamed one');
    assert.deepEqual(
      announced.map((batch) => [...new Set(batch.map((b) => b.time.toISOString().slice(0, 10)))]),
      [[d1], [d2], [d3]],
    );
    assert.equal(await countRows(), SYMBOLS.length * (old.length + 3));
  });

  test('a daily bar of a session still open (before 16:00 New York) is neither stored nor announced; after the close it is', async () => {
    const date = nextWeekdays(DATES.at(-1)!, 1)[0]!;
    let clock = new Date(sessionClose(new Date(`${date}T00:00:00Z`)).getTime() - 3_600_000); // 15:00 New York
    const alpaca = makeFeed({ now: () => clock });
    await alpaca.backfill();
    alpaca.start((bars) => void announced.push([...bars]));
    await until(() => alpaca.health().status === 'ok', 'the stream subscribed');
    await alpaca.idle();
    const bar = nextBar(lastOf('AAPL'), date);
    fake.addBars('AAPL', [bar]); // REST has the day so far too: a catch-up must not store it either
    fake.sendDaily([{ symbol: 'AAPL', bar }]);
    await new Promise((r) => setTimeout(r, 100));
    await alpaca.idle();
    assert.equal(announced.length, 0);
    assert.equal(await alpaca.backfill(), true);
    assert.equal((await storedCloses('AAPL')).at(-1)!.time.toISOString().slice(0, 10), DATES.at(-1));
    clock = new Date(clock.getTime() + 3_600_000); // 16:00: the session is closed
    fake.sendDaily([{ symbol: 'AAPL', bar }]);
    await until(() => announced.length === 1, 'the final bar');
    assert.equal((await storedCloses('AAPL')).at(-1)!.time.toISOString().slice(0, 10), date);
  });

  test('error 405 (symbol limit): a clear log line naming the configured count, health degraded', async () => {
    await fake.close();
    fake = await new FakeAlpaca({ symbolLimit: 2 }).start();
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(DATES, i + 1)));
    const alpaca = makeFeed();
    await alpaca.backfill();
    alpaca.start(() => {});
    await until(() => /405/.test(alpaca.health().detail), '405 in health');
    assert.match(alpaca.health().detail, /stream error 405 symbol limit exceeded/);
    assert.ok(logLines.some((l) => /plan allows fewer symbols than the 3 subscribed/.test(l)));
  });
});
