import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { wsClient, wsExecute } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { SignalRecorder } from '../helpers/signals.js';
import { stackName } from '../helpers/services.js';

const TICK_MS = 400;
// The fan-out test uses the strategy no other test subscribes to: with Redis, interest in a symbol
// outlives its last subscriber by a few seconds (it expires rather than being deleted), so the other
// tests' symbols may still be computed for direction-1d while it measures.
const RUNS_5D = 'sibyl_inference_runs_total{strategy="direction-5d",version="v1"}';
const PUBLISHED_5D = 'sibyl_signals_published_total{strategy="direction-5d"}';
const FULL =
  'symbol strategy horizon asOf signal probability confidence stale featuresHash quote { symbol time close source } model { strategy version active } interval(level: 0.9) { level low high }';

describe(`live signals over graphql-ws (${stackName})`, () => {
  let server: TestGateway;
  let clients: Client[] = [];
  const client = () => {
    const c = wsClient(server.url);
    clients.push(c);
    return c;
  };
  /** Each test closes its connections, so no subscription of one test widens what the next one measures. */
  const closeClients = async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    clients = [];
    await gaugeSettles(0);
  };
  const gaugeSettles = async (value: number) => {
    const deadline = Date.now() + 5_000;
    while ((await metricValue(server.url, 'sibyl_subscriptions_active')) !== value && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await metricValue(server.url, 'sibyl_subscriptions_active'), value);
  };
  before(async () => {
    server = await startTestGateway({
      SYNTHETIC_TICK_MS: String(TICK_MS),
      SIGNALS_INTERVAL_MS: '0',
      MAX_SYMBOLS_PER_REQUEST: '25',
      WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '25',
    });
  });
  afterEach(closeClients);
  after(async () => server.close());

  test('pushes one prediction per new bar of each subscribed symbol, resolving the same fields as queries', async () => {
    const s = new SignalRecorder(client(), { symbols: ['AAPL', 'MSFT'] }, FULL);
    await s.until((r) => r.ticks().length >= 3, 30_000, '3 ticks');
    s.dispose();
    for (const symbol of ['AAPL', 'MSFT']) {
      const own = s.messages.filter((m) => m.symbol === symbol);
      assert.ok(own.length >= 2, `${symbol}: ${own.length} messages`);
      const times = own.map((m) => Date.parse(m.asOf));
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
        'asOf ascends',
      );
      assert.equal(new Set(times).size, times.length, 'one message per bar');
    }
    for (const m of s.messages) {
      assert.deepEqual(
        Object.keys(m).sort(),
        FULL.replace(/\{[^}]*\}|\([^)]*\)/g, '')
          .split(/\s+/)
          .filter(Boolean)
          .sort(),
      );
      const quote = m.quote as { symbol: string; time: string; close: number; source: string };
      assert.equal(quote.symbol, m.symbol);
      assert.equal(quote.time, m.asOf, 'the quote is the bar the prediction was made on');
      assert.equal(quote.source, 'synthetic');
      assert.deepEqual(m.model, { strategy: 'direction-1d', version: 'v1', active: true });
      const interval = m.interval as { level: number; low: number; high: number };
      assert.equal(interval.level, 0.9);
      assert.ok(interval.low < quote.close && quote.close < interval.high);
      assert.ok(m.confidence >= 0.5 && m.confidence <= 1);
    }
  });

  test('minConfidence filters: a filtered subscription gets exactly the confident part of what an unfiltered one gets', async () => {
    const symbols = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V', 'XOM', 'JNJ'];
    const threshold = 0.52;
    const c = client();
    const all = new SignalRecorder(c, { symbols });
    const confident = new SignalRecorder(c, { symbols, minConfidence: threshold });
    await all.until((r) => r.ticks().length >= 4, 30_000, '4 ticks');
    // Everything `confident` was sent is in `all` and over the threshold…
    const key = (m: { symbol: string; asOf: string }) => `${m.symbol}@${m.asOf}`;
    const allKeys = new Set(all.messages.map(key));
    for (const m of confident.messages) {
      assert.ok(m.confidence >= threshold, `${key(m)} has confidence ${m.confidence}`);
      assert.ok(allKeys.has(key(m)));
    }
    // …and from the first tick it was certainly attached for, nothing confident is missing.
    await confident.until((r) => r.messages.length > 0, 10_000, 'a confident message');
    const from = Date.parse(confident.messages[0]!.asOf);
    const lastTick = Date.parse(all.ticks().at(-1)!);
    const expected = all.messages
      .filter((m) => m.confidence >= threshold && Date.parse(m.asOf) >= from && Date.parse(m.asOf) < lastTick)
      .map(key);
    const got = new Set(confident.messages.map(key));
    for (const k of expected) assert.ok(got.has(k), `missing ${k}`);
    assert.ok(
      all.messages.some((m) => m.confidence < threshold),
      'the filter had something to remove',
    );
    all.dispose();
    confident.dispose();
  });

  test('bad arguments are refused with coded graphql-ws error messages; the connection and other subscriptions stay up', async () => {
    const c = client();
    const good = new SignalRecorder(c, { symbols: ['AAPL'] });
    await good.until((r) => r.messages.length >= 1, 30_000, 'a first signal');
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ symbols: ['aapl'] }, 'BAD_USER_INPUT', /symbols: each of symbols must be an upper-case ticker/],
      [{ symbols: [] }, 'BAD_USER_INPUT', /at least one symbol/],
      [{ symbols: ['ZZZZ'] }, 'UNKNOWN_SYMBOL', /Unknown symbol "ZZZZ"/],
      [{ symbols: ['AAPL'], strategy: 'nope-1d' }, 'UNKNOWN_STRATEGY', /Unknown strategy "nope-1d"/],
      [{ symbols: ['AAPL'], minConfidence: 1.5 }, 'BAD_USER_INPUT', /minConfidence must be between 0 and 1/],
      [{ symbols: ['AAPL'], since: new Date(Date.now() + 3_600_000).toISOString() }, 'BAD_USER_INPUT', /since .* is in the future/],
      [{ symbols: Array.from({ length: 26 }, (_, i) => `S${i}`) }, 'BAD_USER_INPUT', /at most 25 per (subscription|request)/],
    ];
    for (const [variables, code, message] of cases) {
      const bad = new SignalRecorder(c, variables);
      const errors = await bad.refusal();
      assert.equal(errors[0]?.extensions?.code, code, JSON.stringify(errors));
      assert.match(errors[0]!.message, message);
      assert.doesNotMatch(JSON.stringify(errors), /stacktrace|node_modules/);
    }
    // A selection the schema refuses gets a validation error the same way.
    const invalid = await wsExecute(c, 'subscription { signals(symbols: ["AAPL"]) { nope } }');
    assert.equal(invalid.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    // The first subscription kept going on the same connection, and the connection still runs queries.
    const before = good.messages.length;
    await good.until((r) => r.messages.length > before, 10_000, 'a signal after the refusals');
    const health = await wsExecute<{ health: { status: string } }>(c, '{ health { status } }');
    assert.equal(health.data?.health.status, 'ok');
    good.dispose();
  });

  test('subscriptions per connection are capped; ending one makes room again', async () => {
    const c = client();
    const limit = 25;
    const open = Array.from({ length: limit }, () => new SignalRecorder(c, { symbols: ['JPM'] }));
    await open[limit - 1]!.until((r) => r.messages.length >= 1, 30_000, 'the last allowed subscription to run');
    const extra = new SignalRecorder(c, { symbols: ['JPM'] });
    const errors = await extra.refusal();
    assert.equal(errors[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(errors[0]!.message, /already has 25 subscriptions running/);
    assert.equal(await metricValue(server.url, 'sibyl_subscriptions_active'), limit);
    open[0]!.dispose();
    await gaugeSettles(limit - 1);
    const again = new SignalRecorder(c, { symbols: ['JPM'] });
    await again.until((r) => r.messages.length >= 1, 30_000, 'a subscription after one ended');
    for (const s of [...open, again]) s.dispose();
    await gaugeSettles(0);
  });

  test('100 subscribers to the same symbols cost one inference run per tick per model', async () => {
    const symbols = ['AAPL', 'MSFT', 'NVDA', 'XOM'];
    const connections = Array.from({ length: 5 }, () => client());
    const subscribers = Array.from(
      { length: 100 },
      (_, i) => new SignalRecorder(connections[i % 5]!, { symbols, strategy: 'direction-5d' }),
    );
    await Promise.all(subscribers.map((s) => s.until((r) => r.ticks().length >= 1, 30_000, 'a first tick')));
    const reference = subscribers[0]!;
    // Runs and publications of the same tick are counted a few ms apart (inference, then publish); a
    // scrape that falls between them is read again, so both counters describe the same ticks.
    const counters = async () => {
      for (;;) {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const value = (series: string) =>
          Number(
            text
              .split('\n')
              .find((l) => l.startsWith(`${series} `))
              ?.slice(series.length + 1) ?? 0,
          );
        const runs = value(RUNS_5D);
        const published = value(PUBLISHED_5D);
        if (runs * symbols.length === published) return { runs, published };
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const before = await counters();
    const from = reference.ticks().length;
    await reference.until((r) => r.ticks().length >= from + 3, 30_000, '3 more ticks');
    const after = await counters();
    const runs = after.runs - before.runs;
    const ticks = (after.published - before.published) / symbols.length;
    // No other test subscribes to direction-5d: every one of its runs and publications is this test's.
    assert.ok(ticks >= 3, `${ticks} ticks published`);
    assert.equal(runs, ticks, `${runs} inference runs for ${ticks} published ticks of ${symbols.length} symbols, with 100 subscribers`);
    const last = reference.ticks().at(-1)!;
    await Promise.all(
      subscribers.map((s) => s.until((r) => r.messages.filter((m) => m.asOf === last).length === symbols.length, 10_000, 'the last tick')),
    );
    for (const s of subscribers) s.dispose();
  });

  test('resume with since: the signals missed while away, in order, then live ones, no gap and no duplicate', async () => {
    const symbols = ['AAPL', 'MSFT', 'TSLA'];
    const c = client();
    const reference = new SignalRecorder(c, { symbols });
    const away = new SignalRecorder(c, { symbols });
    await away.until((r) => r.ticks().length >= 2, 30_000, '2 ticks');
    away.dispose();
    const lastSeen = away.messages.at(-1)!.asOf;
    // Ten ticks go by while the client is away.
    await reference.until((r) => r.ticks().filter((t) => Date.parse(t) > Date.parse(lastSeen)).length >= 10, 60_000, '10 ticks while away');
    const back = new SignalRecorder(c, { symbols, since: lastSeen });
    const missedAndMore = (r: SignalRecorder) => r.ticks().length >= 13;
    await back.until(missedAndMore, 30_000, 'the replay and 3 live ticks');
    const key = (m: { symbol: string; asOf: string }) => `${m.symbol}@${m.asOf}`;
    const got = back.messages.map(key);
    assert.equal(new Set(got).size, got.length, 'no duplicates');
    assert.ok(back.messages.every((m) => Date.parse(m.asOf) > Date.parse(lastSeen)));
    // Exactly what a client that never left received over the same stretch, in the same order.
    const expected = reference.messages
      .filter((m) => Date.parse(m.asOf) > Date.parse(lastSeen))
      .map(key)
      .slice(0, got.length);
    assert.deepEqual(got, expected);
    assert.ok(back.ticks().length >= 13 && got.length >= 13 * symbols.length - symbols.length);
    reference.dispose();
    back.dispose();
  });
});
