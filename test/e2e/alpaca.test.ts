import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { sql } from 'kysely';
import { FakeAlpaca } from '../helpers/fake-alpaca.js';
import { nextBar, nextWeekdays, walk, weekdays } from '../helpers/fake-vendor.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient } from '../helpers/graphql.js';
import { historyRowsAt } from '../helpers/history-rows.js';
import { stackName } from '../helpers/services.js';
import { SignalRecorder } from '../helpers/signals.js';

const SYMBOLS = ['AAPL', 'MSFT'];
// 130 sessions (features need 100) ending four weeks ago, so every streamed session is already closed.
const DATES = weekdays(130, 28);

describe(`the gateway on Alpaca Market Data v2 (a local fake on 127.0.0.1) (${stackName})`, () => {
  let fake: FakeAlpaca;
  let server: TestGateway;
  let client: Client;

  const publishSession = (date: string, move: number) => {
    const entries = SYMBOLS.map((symbol) => ({ symbol, bar: nextBar(fake.bars.get(symbol)!.at(-1)!, date, move) }));
    for (const { symbol, bar } of entries) fake.addBars(symbol, [bar]);
    fake.sendDaily(entries);
  };
  const ready = async () =>
    (await (await fetch(`${server.url}/health/ready`)).json()) as { components: Array<{ name: string; status: string; detail?: string }> };
  const marketComponent = async () => (await ready()).components.find((c) => c.name === 'market')!;
  const historyRows = (symbol: string, date: string) => historyRowsAt(server.gateway.database.db, symbol, date);

  before(async () => {
    fake = await new FakeAlpaca({ pageSize: 100 }).start();
    SYMBOLS.forEach((symbol, i) => fake.addBars(symbol, walk(DATES, 11 + i, 150 + 100 * i)));
    server = await startTestGateway({
      MARKET_PROVIDER: 'alpaca',
      ALPACA_KEY_ID: fake.keyId,
      ALPACA_SECRET_KEY: fake.secretKey,
      ALPACA_DATA_URL: fake.restUrl,
      ALPACA_STREAM_URL: fake.streamUrl,
      ALPACA_SYMBOLS: SYMBOLS.join(','),
      ALPACA_BACKFILL_DAYS: '400',
      SIGNALS_INTERVAL_MS: '0',
    });
    client = wsClient(server.url);
  });
  after(async () => {
    await client.dispose();
    await server.close();
    await fake.close();
  });

  test('start → backfill → quotes from alpaca → a streamed bar reaches a signals subscriber within 1 s and is in history; a 3-session drop is caught up in order', async () => {
    // Backfilled at start, over pages, before the gateway listened.
    const { data } = await postQuery<{ predictions: Array<{ symbol: string; asOf: string; quote: { source: string; close: number } }> }>(
      server.url,
      '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol asOf quote { source close } } }',
    );
    assert.equal(data!.predictions.length, 2);
    for (const p of data!.predictions) {
      assert.equal(p.quote.source, 'alpaca');
      assert.equal(p.asOf.slice(0, 10), DATES.at(-1));
    }
    assert.ok(
      fake.requests.some((r) => r.query.page_token),
      'the backfill paged',
    );
    const deadline = Date.now() + 10_000;
    while ((await marketComponent()).status !== 'ok' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match((await marketComponent()).detail ?? '', /alpaca: streaming/);

    const s = new SignalRecorder(client, { symbols: ['AAPL'] }, 'symbol asOf quote { source close }');
    // SIGNALS_INTERVAL_MS=0: nothing is published until a bar arrives; give the subscription time to register its interest.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.messages.length, 0);

    const [d1, d2, d3, d4] = nextWeekdays(DATES.at(-1)!, 4) as [string, string, string, string];
    const sent = performance.now();
    publishSession(d1, 0.01);
    await s.until((r) => r.ticks().some((t) => t.startsWith(d1)), 1_000, 'the streamed bar’s prediction within 1 s');
    const latencyMs = performance.now() - sent;
    const live = s.messages.find((m) => m.asOf.startsWith(d1))!;
    assert.equal((live.quote as { source: string }).source, 'alpaca');
    // Recorded: the history writer flushes every second.
    const until = Date.now() + 5_000;
    while ((await historyRows('AAPL', d1)) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await historyRows('AAPL', d1)) >= 1, 'the live prediction is in prediction_history');

    // The stream drops; three sessions close while it cannot reconnect; then it can.
    fake.acceptingStream = false;
    fake.dropStream();
    for (const [date, move] of [
      [d2, -0.01],
      [d3, 0.005],
      [d4, 0.012],
    ] as const)
      publishSession(date, move);
    fake.acceptingStream = true;
    await s.until((r) => r.ticks().some((t) => t.startsWith(d4)), 15_000, 'the caught-up sessions');
    const ticks = s.ticks().map((t) => t.slice(0, 10));
    assert.deepEqual(ticks.slice(ticks.indexOf(d1)), [d1, d2, d3, d4], 'one prediction per missed session, in order');
    const stored = await sql<{ n: string }>`select count(*) as n from market_bars`.execute(server.gateway.database.db);
    assert.equal(Number(stored.rows[0]!.n), SYMBOLS.length * (DATES.length + 4), 'each bar stored once');
    s.dispose();
    console.log(`# streamed bar → signals subscriber: ${latencyMs.toFixed(0)} ms`);
  });
});

describe(`the gateway on Alpaca with wrong keys (${stackName})`, () => {
  let fake: FakeAlpaca;
  let server: TestGateway;
  before(async () => {
    fake = await new FakeAlpaca().start();
    fake.addBars('AAPL', walk(DATES, 3));
    server = await startTestGateway({
      MARKET_PROVIDER: 'alpaca',
      ALPACA_KEY_ID: fake.keyId,
      ALPACA_SECRET_KEY: 'not-the-secret',
      ALPACA_DATA_URL: fake.restUrl,
      ALPACA_STREAM_URL: fake.streamUrl,
      ALPACA_SYMBOLS: 'AAPL',
    });
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  test('starts anyway; readiness names the auth failure on market; queries answer with a client-visible error, no crash', async () => {
    const response = await fetch(`${server.url}/health/ready`);
    const report = (await response.json()) as { components: Array<{ name: string; status: string; detail?: string }> };
    const market = report.components.find((c) => c.name === 'market')!;
    assert.equal(market.status, 'degraded');
    assert.match(market.detail ?? '', /REST auth failed \(HTTP 403\)/);
    const { data, errors } = await postQuery(server.url, '{ predictions(symbols: ["AAPL"]) { symbol } }');
    assert.ok(data === null || errors?.length, 'no bars stored: the prediction fails, the gateway does not');
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
  });
});

describe(`the gateway on Alpaca while it throttles (${stackName})`, () => {
  let fake: FakeAlpaca;
  let server: TestGateway;
  before(async () => {
    fake = await new FakeAlpaca().start();
    fake.addBars('AAPL', walk(DATES, 3));
    fake.throttle = { remaining: 1_000, retryAfterS: 30 }; // longer than the backoff cap: no retry
    server = await startTestGateway({
      MARKET_PROVIDER: 'alpaca',
      ALPACA_KEY_ID: fake.keyId,
      ALPACA_SECRET_KEY: fake.secretKey,
      ALPACA_DATA_URL: fake.restUrl,
      ALPACA_STREAM_URL: fake.streamUrl,
      ALPACA_SYMBOLS: 'AAPL',
    });
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  test('starts; readiness names the throttling on market and stays ready; the gateway keeps answering', async () => {
    const response = await fetch(`${server.url}/health/ready`);
    assert.equal(response.status, 200, 'degraded, still ready: stored bars (none here) are served');
    const report = (await response.json()) as { components: Array<{ name: string; status: string; detail?: string }> };
    const market = report.components.find((c) => c.name === 'market')!;
    assert.equal(market.status, 'degraded');
    assert.match(market.detail ?? '', /REST throttled \(HTTP 429/);
    // One request per catch-up (start-up, after subscribing, then backed-off retries), none retried inside one.
    const throttled = fake.requests.filter((r) => r.status === 429).length;
    assert.ok(throttled >= 1 && throttled <= 4, `${throttled} throttled requests`);
    assert.equal((await fetch(`${server.url}/health/live`)).status, 200);
  });
});
