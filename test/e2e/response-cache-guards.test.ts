import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Bar, FetchBarsOptions, MarketDataProvider } from '../../src/infra/market-data/market-data.js';
import type { ResponseCache } from '../../src/infra/response-cache/response-cache.js';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { wsClient, wsExecute } from '../helpers/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { stackName } from '../helpers/services.js';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text(), headers: Object.fromEntries(response.headers) };
}

const BYPASS = { 'cache-control': 'no-cache, no-store' };
const PREDICTION = {
  query: 'query P($s: [String!]!) { predictions(symbols: $s) { symbol asOf probability stale model { version active } } }',
  variables: { s: ['AAPL', 'MSFT'] },
};

/** Replaces the market's fetchBars (the raw provider every wrapper calls) for the length of a test. */
function interceptFetches(market: MarketDataProvider, around: (real: () => Promise<Map<string, Bar[]>>) => Promise<Map<string, Bar[]>>) {
  const original = market.fetchBars.bind(market);
  (market as { fetchBars: MarketDataProvider['fetchBars'] }).fetchBars = (symbols: readonly string[], options: FetchBarsOptions) =>
    around(() => original(symbols, options));
  return () => void ((market as { fetchBars: MarketDataProvider['fetchBars'] }).fetchBars = original);
}

describe(`response cache: races, failures and what still guards a hit (${stackName})`, () => {
  let fixture: ModelsFixture;
  let server: TestGateway;
  let cache: ResponseCache;

  before(async () => {
    fixture = await modelsFixture();
    await fixture.addVersion('direction-1d', 'v2', { calibrationShift: 0.5 });
    server = await startTestGateway({
      RESPONSE_CACHE: 'on',
      MODELS_DIR: fixture.dir,
      // No ticks: every change here is one the test makes. No market tier: every execution fetches.
      SYNTHETIC_TICK_MS: '0',
      MARKET_CACHE_TTL_MS: '0',
      MARKET_FETCH_RETRIES: '0',
    });
    cache = server.gateway.responseCache!;
  });

  after(async () => {
    await server?.close();
    fixture?.remove();
  });

  test('an answer computed while the model it used was switched is not stored: the next request gets the new model', async () => {
    const versionOf = (answer: Answer) =>
      (JSON.parse(answer.body) as { data: { predictions: Array<{ model: { version: string } }> } }).data.predictions[0]!.model.version;
    const serving = versionOf(await post(server.url, PREDICTION)); // stored under the serving version
    const other = serving === 'v1' ? 'v2' : 'v1';
    const query = { ...PREDICTION, variables: { s: ['NVDA'] } };
    let release!: () => void;
    let reached!: () => void;
    const inFetch = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const restore = interceptFetches(server.gateway.market, async (real) => {
      reached();
      await gate;
      return real();
    });
    let slow: Promise<Answer>;
    try {
      // The prediction has read which version serves and now waits for its bars.
      slow = post(server.url, query);
      await inFetch;
      const activated = await post(server.url, {
        query: `mutation { activateModelVersion(strategy: "direction-1d", version: "${other}") { activeVersion { version } } }`,
      });
      assert.equal(JSON.parse(activated.body).data.activateModelVersion.activeVersion.version, other);
      release();
    } finally {
      restore();
    }
    assert.equal(versionOf(await slow), serving, 'the batch kept the version it started with');
    const stores = await storesOf(server.url);
    assert.ok(stores.changed >= 1, `the refusal is counted: ${JSON.stringify(stores)}`);
    // Asked again: executed (nothing was stored for it), by the version serving now.
    const hitsBefore = cache.stats.hits;
    const again = await post(server.url, query);
    assert.equal(cache.stats.hits, hitsBefore, 'not a hit: the answer of the old version was refused');
    assert.equal(versionOf(again), other);
    // And the answer stored before the switch is gone.
    assert.equal(versionOf(await post(server.url, PREDICTION)), other);
  });

  test('a market failure drops the answers of the symbols it hides, once observed; while it lasts none is stored', async () => {
    const fresh = await post(server.url, PREDICTION);
    assert.equal(JSON.parse(fresh.body).data.predictions[0].stale, false);
    const hitsBefore = cache.stats.hits;
    assert.equal((await post(server.url, PREDICTION)).body, fresh.body);
    assert.equal(cache.stats.hits, hitsBefore + 1, 'stored and served');

    const restore = interceptFetches(server.gateway.market, async () => {
      throw new Error('the market is down');
    });
    try {
      // A hit reads no market: the failure is observed by the next fetch (a miss, the monitor's tick, the
      // breaker), as an execution reading the market tier would observe it only when its entry expires.
      const observed = cache.versions.now();
      const executed = await post(server.url, PREDICTION, BYPASS);
      assert.ok(
        (JSON.parse(executed.body).data.predictions as Array<{ stale: boolean }>).every((p) => p.stale),
        executed.body,
      );
      assert.ok(cache.versions.now() > observed, 'observing the failure is a change of those bars');
      for (let i = 0; i < 3; i++) {
        const before = cache.stats.hits;
        const cached = await post(server.url, PREDICTION);
        assert.equal(cache.stats.hits, before, 'the answer from before the failure is gone, and none is stored meanwhile');
        assert.equal(cached.body, (await post(server.url, PREDICTION, BYPASS)).body);
      }
      assert.ok((await storesOf(server.url)).volatile >= 3);
    } finally {
      restore();
    }
    // Recovered (the breaker may still be open a moment): the same answers as an execution.
    const cached = await post(server.url, PREDICTION);
    assert.equal(cached.body, (await post(server.url, PREDICTION, BYPASS)).body);
  });

  test('hits carry the same headers as the miss that stored them (request id and rate headers aside)', async () => {
    const query = { query: '{ strategies { name activeVersion { version } } }' };
    const miss = await post(server.url, query, { accept: 'application/graphql-response+json' });
    const hitsBefore = cache.stats.hits;
    const hit = await post(server.url, query, { accept: 'application/graphql-response+json' });
    assert.equal(cache.stats.hits, hitsBefore + 1);
    const strip = (headers: Record<string, string>) => {
      const { 'x-request-id': _id, date: _date, ...rest } = headers;
      return rest;
    };
    assert.deepEqual(strip(hit.headers), strip(miss.headers));
    assert.equal(hit.headers['content-type'], 'application/graphql-response+json; charset=utf-8');
    // Accept is part of the key: the other content type is its own entry, with its own header.
    const json = await post(server.url, query, { accept: 'application/json' });
    assert.equal(json.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(json.body, hit.body);
  });

  test('errors, mutations, GET requests and no-store requests are never stored; no-cache executes', async () => {
    const entries = () => cache.stats.entries;
    // Changes the model (evicting what read it) before counting: nothing below changes an input.
    await post(server.url, { query: 'mutation { activateModelVersion(strategy: "direction-1d", version: "v1") { name } }' });
    const before = entries();
    await post(server.url, { query: 'mutation { activateModelVersion(strategy: "direction-1d", version: "v1") { name } }' });
    assert.equal(entries(), before, 'a mutation');
    const unknown = { query: '{ predictions(symbols: ["NOPE"]) { symbol } }' };
    await post(server.url, unknown);
    await post(server.url, unknown);
    assert.equal(entries(), before, 'an answer with an error');
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ symbols }')}`, {
      headers: { 'apollo-require-preflight': '1' },
    });
    assert.equal(get.status, 200);
    assert.equal(entries(), before, 'a GET');
    await post(server.url, { query: '{ symbols }' }, { 'cache-control': 'no-store' });
    assert.equal(entries(), before, 'no-store');
    await post(server.url, { query: '{ symbols }' });
    assert.equal(entries(), before + 1);
    const hits = cache.stats.hits;
    await post(server.url, { query: '{ symbols }' }, { 'cache-control': 'no-cache' });
    assert.equal(cache.stats.hits, hits, 'no-cache looks nothing up');
    await post(server.url, { query: '{ health { status } }' });
    await post(server.url, { query: '{ health { status } }' });
    assert.equal(entries(), before + 1, 'health is live state');
  });
});

describe(`response cache: hits answered before fastify, and what they hand over (${stackName})`, () => {
  let server: TestGateway;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    server = await startTestGateway(
      { RESPONSE_CACHE: 'on', SYNTHETIC_TICK_MS: '0', MAX_BODY_BYTES: '4096', LOG_LEVEL: 'info' },
      {
        logDestination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
      },
    );
  });

  after(async () => {
    await server?.close();
  });

  const raw = async (body: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: response.status, body: await response.text(), id: response.headers.get('x-request-id') };
  };

  test('a hit writes the request log line and echoes a sane request id, as the fastify path does', async () => {
    const body = JSON.stringify({ query: '{ symbols }' });
    await raw(body);
    const hit = await raw(body, { 'x-request-id': 'client-chosen.id-1' });
    assert.equal(hit.id, 'client-chosen.id-1');
    const line = lines.find((l) => l.reqId === 'client-chosen.id-1');
    assert.ok(line, 'logged');
    assert.equal(line.msg, 'request');
    assert.equal(line.status, 200);
    assert.equal(line.responseCache, 'hit');
    assert.equal(line.operationType, 'query');
    const odd = await raw(body, { 'x-request-id': 'not ok: spaces' });
    assert.notEqual(odd.id, 'not ok: spaces');
    assert.match(odd.id ?? '', /^[0-9a-f-]{36}$/);
  });

  test('the server the lane listens on still upgrades WebSockets: graphql-ws runs on the same port', async () => {
    const client = wsClient(server.url);
    try {
      const result = await wsExecute(client, '{ symbols }');
      assert.ok(Array.isArray((result.data as { symbols: unknown[] }).symbols), JSON.stringify(result));
    } finally {
      await client.dispose();
    }
  });

  test('what it cannot answer is handed over whole: fastify and Apollo answer as without a cache', async () => {
    const body = JSON.stringify({ query: '{ symbols }' });
    await raw(body);
    const bad = await raw('{"query": ');
    assert.equal(bad.status, 400, bad.body);
    assert.equal(JSON.parse(bad.body).errors[0].extensions.code, 'BAD_REQUEST');
    const poisoned = await raw('{"query": "{ symbols }", "__proto__": { "x": 1 }}');
    assert.equal(poisoned.status, 400, poisoned.body);
    const large = await raw(JSON.stringify({ query: '{ symbols }', variables: { pad: 'x'.repeat(5000) } }));
    assert.equal(large.status, 413, large.body);
    assert.equal(JSON.parse(large.body).errors[0].extensions.limit, 'bodyBytes');
    // A body handed over after being read (a miss) reaches Apollo intact.
    const missed = await raw(JSON.stringify({ query: 'query S { strategies { name } }', operationName: 'S' }));
    assert.equal(missed.status, 200, missed.body);
    assert.ok(JSON.parse(missed.body).data.strategies.length >= 1);
  });
});

describe(`response cache: a hit is authenticated and admitted like any request (${stackName})`, () => {
  let server: TestGateway;
  let cache: ResponseCache;

  before(async () => {
    server = await startTestGateway({
      RESPONSE_CACHE: 'on',
      AUTH_MODE: 'apikey',
      SYNTHETIC_TICK_MS: '0',
      RATE_LIMIT_POINTS: '40',
      RATE_LIMIT_WINDOW_S: '3600',
      TRUSTED_DOCUMENTS_ONLY: 'true',
    });
    cache = server.gateway.responseCache!;
  });

  after(async () => {
    await server?.close();
  });

  test('the rate limit counts hits: a cached answer is refused 429 once the budget is spent', async () => {
    const keys = apiKeysOf(server);
    const analyst = bearer((await keys.create('analyst')).key);
    const query = { query: '{ strategies { name } }' };
    const first = await post(server.url, query, analyst);
    assert.equal(first.status, 200, first.body);
    const cost = 40 - Number(first.headers['ratelimit-remaining']);
    assert.ok(cost >= 1);
    const hitsBefore = cache.stats.hits;
    let remaining = Number(first.headers['ratelimit-remaining']);
    while (remaining >= cost) {
      const hit = await post(server.url, query, analyst);
      assert.equal(hit.status, 200);
      assert.equal(Number(hit.headers['ratelimit-remaining']), remaining - cost, 'each hit is charged its cost');
      remaining -= cost;
    }
    assert.ok(cache.stats.hits > hitsBefore, 'answered from the cache until then');
    const refused = await post(server.url, query, analyst);
    assert.equal(refused.status, 429, refused.body);
    assert.equal(JSON.parse(refused.body).errors[0].extensions.code, 'RATE_LIMITED');
    assert.ok(Number(refused.headers['retry-after']) > 0);
  });

  test('a revoked key is refused where its answer was cached; another role never gets it; untrusted documents stay refused', async () => {
    const keys = apiKeysOf(server);
    const viewer = await keys.create('viewer');
    const analyst = await keys.create('analyst');
    const trusted = {
      operationName: 'Symbols',
      query: 'query Symbols {\n  symbols\n}',
    };
    const ok = await post(server.url, trusted, bearer(viewer.key));
    assert.equal(ok.status, 200, ok.body);
    const hits = cache.stats.hits;
    assert.equal((await post(server.url, trusted, bearer(viewer.key))).status, 200);
    assert.equal(cache.stats.hits, hits + 1);
    await keys.keys.revoke(viewer.id, 'test');
    const revoked = await post(server.url, trusted, bearer(viewer.key));
    assert.equal(revoked.status, 401, revoked.body);
    assert.equal(JSON.parse(revoked.body).errors[0].extensions.code, 'UNAUTHENTICATED');

    // An analyst may run any document; its answer is stored under its role, never handed to a viewer,
    // who is refused that document.
    const untrusted = { query: '{ symbols strategies { name } }' };
    assert.equal((await post(server.url, untrusted, bearer(analyst.key))).status, 200);
    assert.equal((await post(server.url, untrusted, bearer(analyst.key))).status, 200);
    const other = await keys.create('viewer');
    const refused = await post(server.url, untrusted, bearer(other.key));
    assert.equal(refused.status, 403, refused.body);
    assert.equal(JSON.parse(refused.body).errors[0].extensions.code, 'FORBIDDEN_OPERATION');
    const anonymous = await post(server.url, trusted);
    assert.notEqual(anonymous.status, 200, 'anonymous callers get no viewer answer');
  });
});

async function storesOf(url: string): Promise<{ changed: number; volatile: number; [outcome: string]: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const match of text.matchAll(/^sibyl_response_cache_stores_total\{outcome="([^"]+)"\} (\S+)$/gm)) out[match[1]!] = Number(match[2]);
  return { changed: 0, volatile: 0, ...out };
}
