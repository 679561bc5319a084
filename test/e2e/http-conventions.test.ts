import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { msUntilNextBar } from '../../src/infra/market-data/feed.js';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';

const TICK_MS = 20_000;
const PREDICTIONS = '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol signal confidence } }';
const PREFLIGHT = { 'apollo-require-preflight': 'true' };

interface Answer {
  status: number;
  cacheControl: string | null;
  vary: string | null;
  body: { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: string } }> };
}

const codes = (answer: Answer) => answer.body.errors?.map((e) => e.extensions?.code);

describe(`HTTP conventions: GET for queries, Cache-Control, persisted queries (${stackName})`, () => {
  let server: TestGateway;
  let viewer: string;

  async function get(params: Record<string, unknown>, headers: Record<string, string> = PREFLIGHT): Promise<Answer> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) search.set(name, typeof value === 'string' ? value : JSON.stringify(value));
    const response = await fetch(`${server.url}/graphql?${search}`, { headers });
    return {
      status: response.status,
      cacheControl: response.headers.get('cache-control'),
      vary: response.headers.get('vary'),
      body: (await response.json()) as Answer['body'],
    };
  }

  before(async () => {
    // A tick far apart, and a ceiling far above it, so the bar clock is what bounds max-age.
    server = await startTestGateway({ AUTH_MODE: 'apikey', SYNTHETIC_TICK_MS: String(TICK_MS), HTTP_CACHE_MAX_AGE_S: '3600' });
    viewer = (await apiKeysOf(server).create('viewer')).key;
  });
  after(() => server?.close());

  test('a GET query needs apollo-require-preflight or a JSON content type (CSRF prevention); with either it is answered', async () => {
    const plain = await get({ query: '{ __typename }' }, {});
    assert.equal(plain.status, 400);
    assert.equal(plain.cacheControl, 'no-store');
    assert.deepEqual(codes(plain), ['BAD_REQUEST']);
    assert.match(plain.body.errors![0]!.message, /apollo-require-preflight/);

    for (const headers of [PREFLIGHT, { 'content-type': 'application/json' }]) {
      const answered = await get({ query: '{ __typename }' }, headers);
      assert.equal(answered.status, 200, JSON.stringify(headers));
      assert.deepEqual(answered.body.data, { __typename: 'Query' });
    }
  });

  test('Cache-Control: private for a credentialed answer, public for an anonymous one, max-age never past the next bar', async () => {
    const feed = server.gateway.signals.feed;
    assert.ok(feed, 'the synthetic market has a feed');
    const before = msUntilNextBar(feed);
    const keyed = await get({ query: PREDICTIONS }, { ...PREFLIGHT, ...bearer(viewer) });
    const anonymous = await get({ query: '{ __typename }' });
    const afterwards = msUntilNextBar(feed);
    assert.equal(keyed.status, 200);
    assert.equal(keyed.body.errors, undefined);

    const keyedAge = /^private, max-age=(\d+)$/.exec(keyed.cacheControl ?? '');
    const anonymousAge = /^public, max-age=(\d+)$/.exec(anonymous.cacheControl ?? '');
    assert.ok(keyedAge, `credentialed: ${keyed.cacheControl}`);
    assert.equal(keyed.vary, 'accept');
    assert.ok(anonymousAge, `anonymous: ${anonymous.cacheControl}`);
    // The bar clock's own reading brackets what the answers promise (unless a tick fell in between,
    // when the reading after is the larger one).
    for (const age of [Number(keyedAge[1]), Number(anonymousAge[1])]) {
      assert.ok(age <= Math.floor(Math.max(before, afterwards) / 1000), `max-age ${age} vs ${before}..${afterwards} ms to the next bar`);
      assert.ok(age <= TICK_MS / 1000);
      if (afterwards <= before) assert.ok(age >= Math.floor(afterwards / 1000), `max-age ${age} vs ${afterwards} ms after`);
    }
  });

  test('Cache-Control: no-store for errors, for live or per-caller fields, and nothing on POST', async () => {
    const cases = {
      // No credential: UNAUTHENTICATED.
      'anonymous predictions': await get({ query: PREDICTIONS }),
      'unknown symbol': await get({ query: '{ prediction(symbol: "NOPE1") { symbol } }' }, { ...PREFLIGHT, ...bearer(viewer) }),
      health: await get({ query: '{ health { status } }' }),
      'health beside predictions': await get({ query: `{ health { status } ${PREDICTIONS.slice(1)}` }, { ...PREFLIGHT, ...bearer(viewer) }),
      'health through a fragment': await get({ query: '{ ...F } fragment F on Query { health { status } }' }),
    };
    const badKey = await get({ query: PREDICTIONS }, { ...PREFLIGHT, ...bearer('sib_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') });
    assert.equal(badKey.status, 401);
    for (const [name, answer] of Object.entries({ ...cases, 'unknown API key': badKey }))
      assert.equal(answer.cacheControl, 'no-store', name);
    assert.deepEqual(codes(cases['anonymous predictions']), ['UNAUTHENTICATED']);
    assert.deepEqual(codes(cases['unknown symbol']), ['UNKNOWN_SYMBOL']);
    assert.equal(cases.health.body.errors, undefined);

    const posted = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(viewer) },
      body: JSON.stringify({ query: PREDICTIONS }),
    });
    assert.equal(posted.status, 200);
    assert.equal(posted.headers.get('cache-control'), null);
  });

  test('automatic persisted queries over GET: unknown hash, registration, by hash alone; a wrong hash is a 400 client error', async () => {
    const query = `query Apq${process.pid} ${PREDICTIONS}`; // unique, so no earlier run registered it
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const keyed = { ...PREFLIGHT, ...bearer(viewer) };

    const unknown = await get({ extensions }, keyed);
    assert.equal(unknown.status, 200);
    assert.deepEqual(codes(unknown), ['PERSISTED_QUERY_NOT_FOUND']);
    assert.equal(unknown.body.errors![0]!.message, 'PersistedQueryNotFound');
    assert.equal(unknown.cacheControl, 'private, no-cache, must-revalidate', "Apollo's own header stands");

    const registered = await get({ query, extensions }, keyed);
    assert.equal(registered.status, 200);
    assert.equal(registered.body.errors, undefined);

    const byHash = await get({ extensions }, keyed);
    assert.equal(byHash.status, 200);
    assert.deepEqual(byHash.body, registered.body);
    assert.match(byHash.cacheControl ?? '', /^private, (max-age=\d+|no-cache)$/);

    const wrong = await get({ query, extensions: { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } } }, keyed);
    assert.equal(wrong.status, 400);
    assert.deepEqual(codes(wrong), ['BAD_REQUEST']);
    assert.equal(wrong.cacheControl, 'no-store');
  });
});
