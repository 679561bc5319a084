import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { sql } from 'kysely';
import { nextBar, nextWeekdays, walk, weekdays } from '../helpers/fake-vendor.js';
import { FakePolygon } from '../helpers/fake-polygon.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient } from '../helpers/graphql.js';
import { historyRowsAt } from '../helpers/history-rows.js';
import { stackName } from '../helpers/services.js';
import { SignalRecorder } from '../helpers/signals.js';

const SYMBOLS = ['AAPL', 'MSFT'];
// 130 sessions (features need 100) ending four weeks ago, so every new session is long final.
const DATES = weekdays(130, 28);

type Component = { name: string; status: string; detail?: string };
const marketOf = async (server: TestGateway) =>
  ((await (await fetch(`${server.url}/health/ready`)).json()) as { components: Component[] }).components.find((c) => c.name === 'market')!;

describe(`the gateway on Polygon.io (a local fake on 127.0.0.1) (${stackName})`, () => {
  let fake: FakePolygon;
  let server: TestGateway;
  let client: Client;

  /** A session closes: its daily bars go to REST, and the stream shows a minute aggregate of it. */
  const closeSession = (date: string, move: number, stream = true) => {
    for (const symbol of SYMBOLS) fake.addBars(symbol, [nextBar(fake.bars.get(symbol)!.at(-1)!, date, move)]);
    if (stream) fake.sendMinute(SYMBOLS, `${date}T19:59:00Z`);
  };
  const historyRows = (symbol: string, date: string) => historyRowsAt(server.gateway.database.db, symbol, date);

  before(async () => {
    fake = await new FakePolygon({ pageSize: 100 }).start();
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(DATES, 11 + i, 150 + 100 * i)));
    server = await startTestGateway({
      MARKET_PROVIDER: 'polygon',
      POLYGON_API_KEY: fake.apiKey,
      POLYGON_REST_URL: fake.restUrl,
      POLYGON_STREAM_URL: fake.streamUrl,
      POLYGON_SYMBOLS: SYMBOLS.join(','),
      POLYGON_BACKFILL_DAYS: '400',
      SIGNALS_INTERVAL_MS: '0',
    });
    client = wsClient(server.url);
  });
  after(async () => {
    await client.dispose();
    await server.close();
    await fake.close();
  });

  test('start → backfill → quotes from polygon → a new session reaches a signals subscriber within 1 s and is in history; a 3-session drop is caught up in order', async () => {
    const { data } = await postQuery<{ predictions: Array<{ symbol: string; asOf: string; quote: { source: string } }> }>(
      server.url,
      '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol asOf quote { source } } }',
    );
    assert.equal(data!.predictions.length, 2);
    for (const p of data!.predictions) {
      assert.equal(p.quote.source, 'polygon');
      assert.equal(p.asOf.slice(0, 10), DATES.at(-1));
    }
    assert.ok(
      fake.requests.some((r) => r.query.cursor),
      'the backfill paged by next_url',
    );
    const deadline = Date.now() + 10_000;
    while ((await marketOf(server)).status !== 'ok' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match((await marketOf(server)).detail ?? '', /polygon: streaming/);

    const s = new SignalRecorder(client, { symbols: ['AAPL'] }, 'symbol asOf quote { source close }');
    await new Promise((r) => setTimeout(r, 500)); // the subscription registers its interest
    assert.equal(s.messages.length, 0);

    const [d1, d2, d3, d4] = nextWeekdays(DATES.at(-1)!, 4) as [string, string, string, string];
    const sent = performance.now();
    closeSession(d1, 0.01);
    await s.until((r) => r.ticks().some((t) => t.startsWith(d1)), 1_000, 'the new session’s prediction within 1 s');
    const latencyMs = performance.now() - sent;
    assert.equal((s.messages.find((m) => m.asOf.startsWith(d1))!.quote as { source: string }).source, 'polygon');
    const until = Date.now() + 5_000;
    while ((await historyRows('AAPL', d1)) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await historyRows('AAPL', d1)) >= 1, 'the live prediction is in prediction_history');

    fake.acceptingStream = false;
    fake.dropStream();
    for (const [date, move] of [
      [d2, -0.01],
      [d3, 0.005],
      [d4, 0.012],
    ] as const)
      closeSession(date, move, false);
    fake.acceptingStream = true;
    await s.until((r) => r.ticks().some((t) => t.startsWith(d4)), 15_000, 'the caught-up sessions');
    const ticks = s.ticks().map((t) => t.slice(0, 10));
    assert.deepEqual(ticks.slice(ticks.indexOf(d1)), [d1, d2, d3, d4], 'one prediction per missed session, in order');
    const stored = await sql<{ n: string }>`select count(*) as n from market_bars`.execute(server.gateway.database.db);
    assert.equal(Number(stored.rows[0]!.n), SYMBOLS.length * (DATES.length + 4), 'each bar stored once');
    s.dispose();
    console.log(`# polygon: new session → signals subscriber: ${latencyMs.toFixed(0)} ms`);
  });
});

describe(`the gateway on Polygon.io with a wrong key, and while it throttles in the body (${stackName})`, () => {
  let fake: FakePolygon;
  let wrongKey: TestGateway;
  before(async () => {
    fake = await new FakePolygon().start();
    fake.addBars('AAPL', walk(DATES, 3));
    wrongKey = await startTestGateway({
      MARKET_PROVIDER: 'polygon',
      POLYGON_API_KEY: 'not-the-key',
      POLYGON_REST_URL: fake.restUrl,
      POLYGON_STREAM_URL: fake.streamUrl,
      POLYGON_SYMBOLS: 'AAPL',
    });
  });
  after(async () => {
    await wrongKey.close();
    await fake.close();
  });

  test('wrong key: starts anyway; readiness names the auth failure on market; no crash', async () => {
    const market = await marketOf(wrongKey);
    assert.equal(market.status, 'degraded');
    assert.match(market.detail ?? '', /REST auth failed \(HTTP 401\): check POLYGON_API_KEY/);
    const { data, errors } = await postQuery(wrongKey.url, '{ predictions(symbols: ["AAPL"]) { symbol } }');
    assert.ok(data === null || errors?.length, 'no bars stored: the prediction fails, the gateway does not');
    assert.equal((await fetch(`${wrongKey.url}/health/live`)).status, 200);
  });

  test('throttled in a 200 body: readiness names it and stays ready', async () => {
    fake.throttle = { remaining: 10_000, inBody: true };
    const throttled = await startTestGateway({
      MARKET_PROVIDER: 'polygon',
      POLYGON_API_KEY: fake.apiKey,
      POLYGON_REST_URL: fake.restUrl,
      POLYGON_STREAM_URL: 'off',
      POLYGON_SYMBOLS: 'AAPL',
    });
    try {
      const response = await fetch(`${throttled.url}/health/ready`);
      assert.equal(response.status, 200);
      const market = await marketOf(throttled);
      assert.equal(market.status, 'degraded');
      assert.match(market.detail ?? '', /REST throttled \(in the body/);
    } finally {
      await throttled.close();
      fake.throttle = { remaining: 0, inBody: false };
    }
  });
});
