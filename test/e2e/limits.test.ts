import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLFormattedError } from 'graphql';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

/** The web app's dashboard: 50 symbols with everything a card shows. */
const DASHBOARD = `query Dashboard($symbols: [String!]!) {
  predictions(symbols: $symbols) {
    symbol asOf signal probability confidence stale featuresHash
    interval(level: 0.9) { low high }
    quote { close time source }
    model { version }
  }
  strategies { name activeVersion { version offlineMetrics { accuracy brier baselineBrier ece } } }
}`;
const UNIVERSE = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V'];
const dashboardSymbols = Array.from({ length: 50 }, (_, i) => UNIVERSE[i % UNIVERSE.length]!);

/** A query of `depth` levels: invalid fields below the schema's real depth still count, and depth is checked first. */
const deepQuery = (depth: number) => `{ ${'a { '.repeat(depth - 1)}b${' }'.repeat(depth - 1)} }`;
const aliasQuery = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
const tokenQuery = (tokens: number) => `{ health { ${'s '.repeat(tokens)}} }`;
const symbolsQuery = (n: number) =>
  `{ predictions(symbols: [${Array.from({ length: n }, () => '"AAPL"').join(',')}]) { symbol signal probability confidence quote { close } } }`;

const limitOf = (errors: readonly GraphQLFormattedError[] | undefined) => ({
  code: errors?.[0]?.extensions?.code,
  limit: errors?.[0]?.extensions?.limit,
});

describe(`query limits on HTTP and WebSocket (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({ MAX_SYMBOLS_PER_REQUEST: '200' });
  });
  after(async () => server.close());

  const hostile: Array<[string, string, { code: string; limit: unknown }]> = [
    ['depth 20', deepQuery(20), { code: 'QUERY_TOO_COMPLEX', limit: 'depth' }],
    ['500 aliases', aliasQuery(500), { code: 'QUERY_TOO_COMPLEX', limit: 'aliases' }],
    ['10k tokens', tokenQuery(10_000), { code: 'QUERY_TOO_COMPLEX', limit: 'tokens' }],
    // Four 200-symbol predictions, each within MAX_SYMBOLS_PER_REQUEST: 4 × 200 × 7 = 5,600 > MAX_QUERY_COST=5000.
    [
      'cost',
      `{ ${['a', 'b', 'c', 'd'].map((alias) => `${alias}: ${symbolsQuery(200).slice(2, -2)}`).join(' ')} }`,
      { code: 'QUERY_TOO_COMPLEX', limit: 'cost' },
    ],
  ];

  for (const [name, query, expected] of hostile) {
    test(`${name}: refused with ${expected.code} naming the limit, over HTTP and graphql-ws`, async () => {
      const http = await postQuery(server.url, query);
      assert.equal(http.status, 400);
      assert.equal(http.data, undefined);
      assert.deepEqual(limitOf(http.errors), expected, JSON.stringify(http.errors).slice(0, 300));
      assert.equal(typeof http.errors?.[0]?.extensions?.max, 'number');
      const client = wsClient(server.url);
      try {
        const ws = await wsExecute(client, query);
        assert.deepEqual(limitOf(ws.errors), expected, JSON.stringify(ws.errors).slice(0, 300));
      } finally {
        await client.dispose();
      }
    });
  }

  test('1,000 symbols: refused before anything runs with BAD_USER_INPUT naming MAX_SYMBOLS_PER_REQUEST, over HTTP and graphql-ws', async () => {
    for (const [query, variables] of [
      [symbolsQuery(1_000), undefined],
      ['query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: Array.from({ length: 1_000 }, () => 'AAPL') }],
    ] as const) {
      const http = await postQuery(server.url, query, variables);
      assert.equal(http.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      assert.equal(http.errors?.[0]?.extensions?.limit, 200);
      assert.match(http.errors?.[0]?.message ?? '', /symbols: at most 200 per request, got 1000/);
      const client = wsClient(server.url);
      try {
        const ws = await wsExecute(client, query, variables);
        assert.equal(ws.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
        assert.equal(ws.errors?.[0]?.extensions?.limit, 200);
      } finally {
        await client.dispose();
      }
    }
  });

  test('the dashboard query (50 symbols, both roots) passes on both transports', async () => {
    const http = await postQuery<{ predictions: unknown[] }>(server.url, DASHBOARD, { symbols: dashboardSymbols });
    assert.equal(http.errors, undefined);
    assert.equal(http.data?.predictions.length, 50);
    const client = wsClient(server.url);
    try {
      const ws = await wsExecute<{ predictions: unknown[] }>(client, DASHBOARD, { symbols: dashboardSymbols });
      assert.equal(ws.errors, undefined);
      assert.equal(ws.data?.predictions.length, 50);
    } finally {
      await client.dispose();
    }
  });

  test('a body over MAX_BODY_BYTES is refused before parsing: HTTP 413 with a GraphQL error naming the limit', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ health { status } } #${'x'.repeat(70_000)}` }),
    });
    assert.equal(response.status, 413);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await response.json()) as { data?: unknown; errors?: GraphQLFormattedError[] };
    assert.equal(body.data, undefined);
    assert.equal(body.errors?.length, 1);
    assert.deepEqual(body.errors?.[0]?.extensions, { code: 'BAD_USER_INPUT', limit: 'bodyBytes', max: 65_536 });
    assert.match(body.errors?.[0]?.message ?? '', /larger than 65536 bytes/);
  });

  test('what fastify refuses before GraphQL runs (broken JSON, an unsupported content type) is a GraphQL error too, status kept', async () => {
    for (const [body, type] of [
      ['{"query": "{ health { status } }"', 'application/json'],
      ['<query/>', 'application/xml'],
    ] as const) {
      const response = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.ok(response.status >= 400 && response.status < 500, `${type}: ${response.status}`);
      const answer = (await response.json()) as { errors?: GraphQLFormattedError[] };
      assert.equal(typeof answer.errors?.[0]?.message, 'string', type);
      assert.equal(answer.errors?.[0]?.extensions?.code, 'BAD_REQUEST', `${type}: ${JSON.stringify(answer)}`);
    }
  });

  test('security headers are set; cross-origin callers get no CORS grant by default', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(response.headers.get('strict-transport-security'));
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });
});

describe(`CORS allowlist and /metrics token (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({
      CORS_ORIGINS: 'https://app.example, https://admin.example',
      METRICS_TOKEN: 'metrics-token-0123456789',
    });
  });
  after(async () => server.close());

  test('listed origins get their CORS grant on preflight, others none', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    assert.equal((await preflight('https://app.example')).headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal((await preflight('https://evil.example')).headers.get('access-control-allow-origin'), null);
  });

  test('/metrics needs the token', async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    const ok = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /sibyl_graphql_request_seconds/);
  });
});
