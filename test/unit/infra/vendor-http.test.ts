import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import {
  createVendorHttpProvider,
  MAX_BACKOFF_MS,
  VendorUnavailableError,
  type BreakerState,
  type VendorHttpOptions,
  type VendorHttpProvider,
} from '../../../src/infra/market-data/vendor-http.js';

/*
 * "acme", a small JSON vendor: GET /bars?symbols=A,B&lookback=N[&until=ISO] answers
 * { bars: [{ s, t, o, h, l, c, ac, v }] }, newest first (as many real vendors do).
 */
const DAY_MS = 86_400_000;
const FIRST_DAY = Date.UTC(2025, 0, 1);
const KNOWN: Record<string, number> = { AAPL: 190, MSFT: 410 };

interface AcmeBar {
  s: string;
  t: string;
  o: number;
  h: number;
  l: number;
  c: number;
  ac: number;
  v: number;
}

function acmeBars(symbol: string, days: number): AcmeBar[] {
  const base = KNOWN[symbol]!;
  return Array.from({ length: days }, (_, i) => {
    const c = base + i;
    return { s: symbol, t: new Date(FIRST_DAY + i * DAY_MS).toISOString(), o: c - 0.5, h: c + 1, l: c - 1, c, ac: c * 0.99, v: 1_000 + i };
  }).reverse();
}

/** What the vendor answers to a request's query string: the last `lookback` of 10 days per known symbol. */
function acmeAnswer(url: URL): { bars: AcmeBar[] } {
  const lookback = Number(url.searchParams.get('lookback'));
  const until = url.searchParams.get('until');
  return {
    bars: (url.searchParams.get('symbols') ?? '')
      .split(',')
      .filter((s) => s in KNOWN)
      .flatMap((s) =>
        acmeBars(s, 10)
          .filter((b) => !until || b.t <= until)
          .slice(0, lookback),
      ),
  };
}

function parseAcme(body: unknown): Map<string, Bar[]> {
  const bars = (body as { bars?: unknown } | null)?.bars;
  if (!Array.isArray(bars)) throw new Error('expected { bars: [...] }');
  const result = new Map<string, Bar[]>();
  for (const raw of bars as AcmeBar[]) {
    const time = new Date(raw.t);
    const numbers = [raw.o, raw.h, raw.l, raw.c, raw.ac, raw.v];
    if (typeof raw.s !== 'string' || Number.isNaN(time.getTime()) || !numbers.every(Number.isFinite)) {
      throw new Error(`bad bar ${JSON.stringify(raw)}`);
    }
    const bar: Bar = {
      symbol: raw.s,
      time,
      open: raw.o,
      high: raw.h,
      low: raw.l,
      close: raw.c,
      adjClose: raw.ac,
      volume: raw.v,
      source: 'acme',
    };
    result.set(raw.s, [...(result.get(raw.s) ?? []), bar]);
  }
  return result;
}

// --- The scripted vendor server -------------------------------------------------------------------

type Step = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

const ok: Step = (_req, res, url) => json(res, 200, acmeAnswer(url));
const status =
  (code: number, headers: Record<string, string> = {}): Step =>
  (_req, res) => {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end('{"error":"scripted"}');
  };
const body =
  (text: string): Step =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(text);
  };
const hang: Step = () => {};
const slowOk =
  (ms: number): Step =>
  (req, res, url) => {
    const timer = setTimeout(() => ok(req, res, url), ms);
    res.on('close', () => clearTimeout(timer));
  };
const dropConnection: Step = (req) => req.socket.destroy();

function json(res: ServerResponse, code: number, value: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

interface Vendor {
  readonly baseUrl: string;
  /** Every request the server saw, in order. */
  readonly requests: URL[];
  /** Request n is answered by steps[n]; the last step answers all later ones. */
  script(...steps: Step[]): void;
  close(): Promise<void>;
}

async function startVendor(): Promise<Vendor> {
  const requests: URL[] = [];
  let steps: Step[] = [ok];
  let offset = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://vendor');
    requests.push(url);
    const index = requests.length - 1 - offset;
    (steps[Math.min(index, steps.length - 1)] ?? ok)(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    script(...next) {
      steps = next;
      offset = requests.length;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

// --- Harness ------------------------------------------------------------------------------------

interface Harness {
  readonly vendor: Vendor;
  readonly provider: VendorHttpProvider;
  readonly logs: Array<{ level: number; msg: string; [key: string]: unknown }>;
  readonly states: BreakerState[];
}

/** A vendor server and a provider over it, both closed when the test ends. */
async function setup(
  t: TestContext,
  overrides: Partial<Omit<VendorHttpOptions, 'breaker'>> & { breaker?: Partial<VendorHttpOptions['breaker']> } = {},
): Promise<Harness> {
  const vendor = await startVendor();
  const logs: Harness['logs'] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
  });
  const { breaker, ...rest } = overrides;
  const provider = createVendorHttpProvider({
    name: 'acme',
    buildRequest(symbols, { lookback, until }) {
      const query = new URLSearchParams({ symbols: symbols.join(','), lookback: String(lookback) });
      if (until) query.set('until', until.toISOString());
      return { url: `${vendor.baseUrl}/bars?${query}`, init: { headers: { accept: 'application/json' } } };
    },
    parseResponse: parseAcme,
    listSymbols: async () => Object.keys(KNOWN).sort(),
    timeoutMs: 500,
    retries: 2,
    backoffMs: 10,
    breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 10_000, volumeThreshold: 100, ...breaker },
    logger,
    random: () => 0.5,
    ...rest,
  });
  const states: BreakerState[] = [];
  provider.onBreakerStateChange((state) => states.push(state));
  t.after(async () => {
    provider.shutdown();
    await vendor.close();
  });
  return { vendor, provider, logs, states };
}

async function rejection(promise: Promise<unknown>): Promise<VendorUnavailableError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof VendorUnavailableError, `expected VendorUnavailableError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

function nextState(provider: VendorHttpProvider): Promise<BreakerState> {
  return new Promise((resolve) => provider.onBreakerStateChange(resolve));
}

const DEBUG = 20;
const WARN = 40;

// --- Tests --------------------------------------------------------------------------------------

describe('vendor HTTP provider', () => {
  test('asks for many symbols in one request and parses the answer, ascending, unknown symbols absent', async (t) => {
    const { vendor, provider } = await setup(t);
    const until = new Date(FIRST_DAY + 7 * DAY_MS);
    const bars = await provider.fetchBars(['MSFT', 'AAPL', 'NOPE'], { lookback: 3, until });

    assert.equal(vendor.requests.length, 1);
    const query = vendor.requests[0]!.searchParams;
    assert.equal(query.get('symbols'), 'MSFT,AAPL,NOPE');
    assert.equal(query.get('lookback'), '3');
    assert.equal(query.get('until'), until.toISOString());

    assert.deepEqual([...bars.keys()].sort(), ['AAPL', 'MSFT']);
    const aapl = bars.get('AAPL')!;
    assert.deepEqual(
      aapl.map((b) => b.time.getTime()),
      [5, 6, 7].map((d) => FIRST_DAY + d * DAY_MS),
    );
    assert.deepEqual(aapl[2], {
      symbol: 'AAPL',
      time: until,
      open: 196.5,
      high: 198,
      low: 196,
      close: 197,
      adjClose: 197 * 0.99,
      volume: 1_007,
      source: 'acme',
    });
    assert.equal(provider.name, 'acme');
    assert.deepEqual(await provider.listSymbols(), ['AAPL', 'MSFT']);
  });

  test('holds a sloppy parser to the contract: only asked-for symbols, at or before until, last lookback bars', async (t) => {
    const { vendor, provider } = await setup(t);
    vendor.script((_req, res) => json(res, 200, { bars: [...acmeBars('AAPL', 10), ...acmeBars('MSFT', 10)] }));
    const until = new Date(FIRST_DAY + 4 * DAY_MS);
    const bars = await provider.fetchBars(['AAPL'], { lookback: 2, until });
    assert.deepEqual([...bars.keys()], ['AAPL']);
    assert.deepEqual(
      bars.get('AAPL')!.map((b) => b.close),
      [193, 194],
    );
  });

  test('no symbols, no request', async (t) => {
    const { vendor, provider } = await setup(t);
    assert.equal((await provider.fetchBars([], { lookback: 5 })).size, 0);
    assert.equal(vendor.requests.length, 0);
  });

  test('retries 5xx and dropped connections with backoff, then succeeds', async (t) => {
    const { vendor, provider, logs } = await setup(t, { retries: 3 });
    vendor.script(status(500), dropConnection, status(503), ok);
    const bars = await provider.fetchBars(['AAPL'], { lookback: 2 });
    assert.equal(bars.get('AAPL')!.length, 2);
    assert.equal(vendor.requests.length, 4);

    const retries = logs.filter((l) => l.msg.includes('retrying'));
    assert.ok(retries.every((l) => l.level === DEBUG));
    // random() = 0.5 of 10, 20, 40 ms.
    assert.deepEqual(
      retries.map((l) => [l.attempt, l.reason, l.status, l.delayMs]),
      [
        [1, 'http-status', 500, 5],
        [2, 'network', undefined, 10],
        [3, 'http-status', 503, 20],
      ],
    );
    assert.equal(provider.breakerState, 'closed');
  });

  test('gives up after the last retry and says why and after how many attempts', async (t) => {
    const { vendor, provider } = await setup(t, { retries: 2 });
    vendor.script(status(502));
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(vendor.requests.length, 3);
    assert.equal(error.vendor, 'acme');
    assert.equal(error.reason, 'http-status');
    assert.equal(error.status, 502);
    assert.equal(error.attempts, 3);
    assert.match(error.message, /"acme" unavailable: HTTP 502 .*after 3 attempts/);
  });

  test('does not retry a 404', async (t) => {
    const { vendor, provider, logs } = await setup(t, { retries: 3 });
    vendor.script(status(404));
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(vendor.requests.length, 1);
    assert.deepEqual([error.reason, error.status, error.attempts], ['http-status', 404, 1]);
    assert.match(error.message, /HTTP 404 .*after 1 attempt\)/);
    assert.equal(logs.filter((l) => l.msg.includes('retrying')).length, 0);
  });

  test('does not retry malformed JSON', async (t) => {
    const { vendor, provider } = await setup(t, { retries: 3 });
    vendor.script(body('{"bars": [ {"s": "AAPL"'));
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(vendor.requests.length, 1);
    assert.deepEqual([error.reason, error.attempts], ['bad-body', 1]);
    assert.match(error.message, /malformed response body/);
    assert.ok(error.cause instanceof SyntaxError);
  });

  test('does not retry a body the parser rejects', async (t) => {
    const { vendor, provider } = await setup(t, { retries: 3 });
    vendor.script(body(JSON.stringify({ bars: [{ s: 'AAPL', t: 'yesterday', o: 1, h: 1, l: 1, c: 1, ac: 1, v: 1 }] })));
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(vendor.requests.length, 1);
    assert.equal(error.reason, 'bad-body');
    assert.match(error.message, /malformed response body: bad bar .*yesterday/);
  });

  test('times out each attempt on its own and retries it', async (t) => {
    const { vendor, provider } = await setup(t, { timeoutMs: 80, retries: 2, backoffMs: 1 });
    vendor.script(hang);
    const started = performance.now();
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    const elapsed = performance.now() - started;
    assert.equal(vendor.requests.length, 3);
    assert.deepEqual([error.reason, error.attempts], ['timeout', 3]);
    assert.match(error.message, /timed out after 80 ms \(after 3 attempts\)/);
    assert.ok(elapsed >= 3 * 75 && elapsed < 1_000, `took ${elapsed} ms`);

    // A slow first attempt costs its own timeout, not the whole call.
    vendor.script(hang, slowOk(20));
    const bars = await provider.fetchBars(['AAPL'], { lookback: 2 });
    assert.equal(bars.get('AAPL')!.length, 2);
    assert.equal(vendor.requests.length, 5);
  });

  test('the timeout covers a body that stops halfway', async (t) => {
    const { vendor, provider } = await setup(t, { timeoutMs: 60, retries: 0 });
    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"bars": [');
    });
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.deepEqual([error.reason, error.attempts], ['timeout', 1]);
  });

  test("honours a 429's Retry-After", async (t) => {
    const { vendor, provider, logs } = await setup(t, { backoffMs: 1 });
    vendor.script(status(429, { 'retry-after': '1' }), ok);
    const started = performance.now();
    const bars = await provider.fetchBars(['MSFT'], { lookback: 1 });
    const elapsed = performance.now() - started;
    assert.equal(bars.get('MSFT')!.length, 1);
    assert.equal(vendor.requests.length, 2);
    assert.ok(elapsed >= 990, `retried after ${elapsed} ms, before Retry-After`);
    assert.equal(logs.find((l) => l.msg.includes('retrying'))!.delayMs, 1_000);
  });

  test('a Retry-After longer than the backoff cap ends the retries at once', async (t) => {
    const { vendor, provider } = await setup(t, { retries: 3 });
    vendor.script(status(503, { 'retry-after': String(MAX_BACKOFF_MS / 1000 + 1) }));
    const started = performance.now();
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.ok(performance.now() - started < 500);
    assert.equal(vendor.requests.length, 1);
    assert.deepEqual([error.reason, error.status, error.attempts], ['http-status', 503, 1]);
    assert.match(error.message, /Retry-After \d+ s exceeds the \d+ s backoff cap/);
  });

  test('the breaker opens after enough failed calls, then fails fast without touching the network', async (t) => {
    const { vendor, provider, states, logs } = await setup(t, {
      retries: 1,
      backoffMs: 1,
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 2, resetTimeoutMs: 10_000 },
    });
    vendor.script(status(500));
    // One breaker action per call, however many attempts it made.
    await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(provider.breakerState, 'closed');
    await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(vendor.requests.length, 4);
    assert.equal(provider.breakerState, 'open');
    assert.deepEqual(states, ['open']);
    assert.ok(logs.some((l) => l.level === WARN && l.breaker === 'open'));

    const error = await rejection(provider.fetchBars(['AAPL', 'MSFT'], { lookback: 2 }));
    assert.deepEqual([error.vendor, error.reason, error.attempts, error.status], ['acme', 'breaker-open', 0, undefined]);
    assert.match(error.message, /circuit breaker open.*no request was made/);
    assert.equal(vendor.requests.length, 4);
  });

  test('after resetTimeoutMs one half-open trial goes through, and its success closes the breaker', async (t) => {
    const { vendor, provider, states, logs } = await setup(t, {
      retries: 0,
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeoutMs: 150 },
    });
    vendor.script(status(500));
    const halfOpen = nextState(provider).then(() => nextState(provider));
    await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(provider.breakerState, 'open');

    assert.equal(await halfOpen, 'half-open');
    assert.equal(provider.breakerState, 'half-open');
    vendor.script(slowOk(50));
    const trial = provider.fetchBars(['AAPL'], { lookback: 2 });
    const others = await rejection(provider.fetchBars(['MSFT'], { lookback: 2 }));
    assert.equal(others.reason, 'breaker-open');
    assert.equal((await trial).get('AAPL')!.length, 2);

    assert.equal(vendor.requests.length, 2);
    assert.equal(provider.breakerState, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'closed']);
    assert.deepEqual(
      logs.filter((l) => l.level === WARN).map((l) => l.breaker),
      ['open', 'half-open', 'closed'],
    );
    assert.equal((await provider.fetchBars(['MSFT'], { lookback: 1 })).size, 1);
  });

  test('a failed half-open trial opens the breaker again', async (t) => {
    const { vendor, provider, states } = await setup(t, {
      retries: 0,
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeoutMs: 100 },
    });
    vendor.script(status(500));
    const halfOpen = nextState(provider).then(() => nextState(provider));
    await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    await halfOpen;
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(error.reason, 'http-status');
    assert.equal(vendor.requests.length, 2);
    assert.equal(provider.breakerState, 'open');
    assert.deepEqual(states, ['open', 'half-open', 'open']);
  });

  test('a listener that throws neither breaks the breaker nor stops the others', async (t) => {
    const { vendor, provider, states, logs } = await setup(t, {
      retries: 0,
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeoutMs: 10_000 },
    });
    provider.onBreakerStateChange(() => {
      throw new Error('listener bug');
    });
    const after: BreakerState[] = [];
    provider.onBreakerStateChange((state) => after.push(state));
    vendor.script(status(500));
    const error = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.equal(error.reason, 'http-status');
    assert.deepEqual(states, ['open']);
    assert.deepEqual(after, ['open']);
    assert.ok(logs.some((l) => l.msg.includes('listener threw')));
  });

  test('shutdown aborts calls in flight, and later calls fail fast', async (t) => {
    const { vendor, provider } = await setup(t, { timeoutMs: 10_000 });
    vendor.script(hang);
    const inFlight = rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    while (vendor.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    provider.shutdown();
    const error = await inFlight;
    assert.deepEqual([error.reason, error.attempts], ['shutdown', 1]);

    const later = await rejection(provider.fetchBars(['AAPL'], { lookback: 2 }));
    assert.deepEqual([later.reason, later.attempts], ['shutdown', 0]);
    assert.equal(vendor.requests.length, 1);
    assert.equal(provider.breakerState, 'open');
  });

  test('rejects bad options up front with clear messages', () => {
    const base: VendorHttpOptions = {
      name: 'acme',
      buildRequest: () => ({ url: 'http://127.0.0.1:9/bars' }),
      parseResponse: parseAcme,
      listSymbols: async () => [],
      timeoutMs: 100,
      retries: 1,
      backoffMs: 10,
      breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 1_000, volumeThreshold: 5 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    };
    const create = (overrides: Partial<VendorHttpOptions>) => () => createVendorHttpProvider({ ...base, ...overrides });
    const breaker = (overrides: Partial<VendorHttpOptions['breaker']>) => create({ breaker: { ...base.breaker, ...overrides } });

    assert.throws(create({ timeoutMs: 0 }), {
      name: 'RangeError',
      message: 'vendor-http provider "acme": timeoutMs must be a positive number of milliseconds, got 0',
    });
    assert.throws(create({ timeoutMs: -5 }), /timeoutMs must be a positive number of milliseconds, got -5/);
    assert.throws(create({ retries: -1 }), /retries must be a non-negative integer \(extra attempts after the first\), got -1/);
    assert.throws(create({ retries: 1.5 }), /retries must be a non-negative integer/);
    assert.throws(create({ backoffMs: -1 }), /backoffMs must be a non-negative number of milliseconds, got -1/);
    assert.throws(breaker({ errorThresholdPercentage: 0 }), /breaker.errorThresholdPercentage must be between 1 and 100, got 0/);
    assert.throws(breaker({ errorThresholdPercentage: 101 }), /breaker.errorThresholdPercentage must be between 1 and 100, got 101/);
    assert.throws(breaker({ resetTimeoutMs: 0 }), /breaker.resetTimeoutMs must be a positive number of milliseconds, got 0/);
    assert.throws(breaker({ volumeThreshold: -1 }), /breaker.volumeThreshold must be a non-negative integer, got -1/);
    assert.throws(breaker({ rollingCountTimeoutMs: 5 }), /breaker.rollingCountTimeoutMs must be at least 10 ms, got 5/);
    assert.throws(create({ name: '' }), /name must be a non-empty string/);
    // Every problem at once, not one per restart.
    assert.throws(create({ timeoutMs: 0, retries: -1 }), /timeoutMs must be .*; retries must be/);

    // The edges are allowed.
    for (const valid of [
      create({ retries: 0, backoffMs: 0 }),
      breaker({ errorThresholdPercentage: 1 }),
      breaker({ errorThresholdPercentage: 100 }),
    ]) {
      valid().shutdown();
    }
  });
});
