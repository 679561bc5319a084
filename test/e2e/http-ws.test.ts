import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { HealthDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

describe(`gateway over HTTP and WebSocket (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway();
  });
  after(async () => server.close());

  test('health answers over HTTP with every component ok', async () => {
    const { status, data, errors } = await execute(server.url, HealthDocument);
    assert.equal(status, 200);
    assert.equal(errors, undefined);
    assert.equal(data?.health.status, 'ok');
    const names = data!.health.components.map((c) => c.name);
    assert.ok(names.includes('database'));
    assert.equal(names.includes('redis'), Boolean(server.gateway.config.redis));
    assert.ok(data!.health.components.every((c) => c.status === 'ok'));
  });

  test('/health/ready and /health/live give the same picture as JSON', async () => {
    const ready = await fetch(`${server.url}/health/ready`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; components: Array<{ name: string; status: string }> };
    assert.equal(body.status, 'ok');
    assert.ok(body.components.some((c) => c.name === 'database' && c.status === 'ok'));
    const live = await fetch(`${server.url}/health/live`);
    assert.deepEqual(await live.json(), { status: 'ok' });
  });

  test('a valid x-request-id is echoed; a missing or hostile one is replaced by a generated id', async () => {
    const echoed = await execute(server.url, HealthDocument, {}, { 'x-request-id': 'trace-42.a:b' });
    assert.equal(echoed.headers.get('x-request-id'), 'trace-42.a:b');
    const generated = await execute(server.url, HealthDocument);
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const hostile = await execute(server.url, HealthDocument, {}, { 'x-request-id': 'x'.repeat(500) });
    assert.match(hostile.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  test('GET /graphql runs queries (with the CSRF-preventing header) and refuses simple cross-site GETs', async () => {
    const url = `${server.url}/graphql?query=${encodeURIComponent('{ health { status } }')}`;
    const ok = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { data: { health: { status: 'ok' } } });
    const csrf = await fetch(url);
    assert.equal(csrf.status, 400);
  });

  test('the development landing page is Apollo Sandbox, telemetry off, with links to the built-in explorer and the web app', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    // Sandbox's page brings its own policy (meta tag); the gateway's would refuse Apollo's CDN.
    assert.equal(page.headers.get('content-security-policy'), null);
    const html = await page.text();
    assert.match(html, /new window\.EmbeddedSandbox/);
    assert.match(html, /"runTelemetry":false/);
    assert.match(html, /<a href="\/explorer\/">Built-in explorer/);
    assert.match(html, /<a href="\/">Web app<\/a>/);
    assert.match(html, /if \(typeof window\.EmbeddedSandbox !== 'function'\) location\.replace\("\/explorer\/"\)/);
    // Everything else keeps the gateway's policy.
    const root = await fetch(`${server.url}/`);
    assert.match(root.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });

  test('bad queries get a code, never a stack trace', async () => {
    const unknownField = await postQuery(server.url, '{ nope }');
    assert.equal(unknownField.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    const syntax = await postQuery(server.url, '{ health { ');
    assert.equal(syntax.errors?.[0]?.extensions?.code, 'GRAPHQL_PARSE_FAILED');
    for (const r of [unknownField, syntax]) assert.doesNotMatch(JSON.stringify(r.errors), /stacktrace|node_modules/);
    const notJson = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": ',
    });
    assert.equal(notJson.status, 400);
  });

  test('HTTP batching is off', async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ health { status } }' }, { query: '{ health { status } }' }]),
    });
    assert.equal(response.status, 400);
  });

  test('queries run over graphql-ws on the same port and path', async () => {
    const client = wsClient(server.url);
    try {
      const result = await wsExecute<{ health: { status: string } }>(client, '{ health { status } }');
      assert.deepEqual(result, { data: { health: { status: 'ok' } } });
    } finally {
      await client.dispose();
    }
  });

  test('an invalid operation over graphql-ws gets a coded error and the connection stays up', async () => {
    const client = wsClient(server.url);
    try {
      const bad = await wsExecute(client, '{ nope }');
      assert.match(bad.errors?.[0]?.message ?? '', /Cannot query field "nope"/);
      assert.equal(bad.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
      const unparsable = await wsExecute(client, '{ health { ');
      assert.equal(unparsable.errors?.[0]?.extensions?.code, 'GRAPHQL_PARSE_FAILED');
      const good = await wsExecute<{ health: { status: string } }>(client, '{ health { status } }');
      assert.equal(good.data?.health.status, 'ok');
    } finally {
      await client.dispose();
    }
  });

  test('a WebSocket message over the size limit closes that socket with 4400, not the server', async () => {
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: `{ health { status } } #${'x'.repeat(100_000)}` } }));
    const [code, reason] = await new Promise<[number, string]>((resolve) => socket.once('close', (c, r) => resolve([c, r.toString()])));
    assert.equal(code, 4400);
    assert.match(reason, /larger than/);
    assert.equal((await execute(server.url, HealthDocument)).data?.health.status, 'ok');
  });

  test('a socket that never sends connection_init is closed with 4408', async () => {
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const code = await new Promise<number>((resolve) => socket.once('close', (c) => resolve(c)));
    assert.equal(code, 4408);
  });

  test('/metrics exposes the GraphQL request histogram and error counter with real counts', async () => {
    await postQuery(server.url, '{ nope }');
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /sibyl_graphql_request_seconds_count\{operation_type="query"\} [1-9]/);
    assert.match(text, /sibyl_graphql_errors_total\{code="GRAPHQL_VALIDATION_FAILED"\} [1-9]/);
    assert.match(text, /process_resident_memory_bytes/);
  });
});

describe(`gateway in production mode (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({ NODE_ENV: 'production', LOG_LEVEL: 'silent' });
  });
  after(async () => server.close());

  test('introspection is refused over HTTP and WebSocket', async () => {
    const http = await postQuery(server.url, '{ __schema { types { name } } }');
    assert.equal(http.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    assert.match(http.errors?.[0]?.message ?? '', /introspection has been disabled/);
    const client = wsClient(server.url);
    try {
      const ws = await wsExecute(client, '{ __schema { types { name } } }');
      assert.match(ws.errors?.[0]?.message ?? '', /introspection has been disabled/);
      assert.equal(ws.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    } finally {
      await client.dispose();
    }
  });

  test('the landing page is the built-in explorer (no CDN), under the CSP', async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    assert.doesNotMatch(html, /EmbeddedSandbox|cdn\.apollographql\.com/);
    // The explorer's page when web/dist is built, or the page saying how to build it.
    assert.match(html, /<title>Sibyl(?: GraphQL explorer|: explorer not built)<\/title>/);
  });

  test('no field suggestions leak the schema', async () => {
    const response = await postQuery(server.url, '{ healt { status } }');
    assert.doesNotMatch(response.errors?.[0]?.message ?? '', /Did you mean/);
  });
});

describe(`WebSocket keep-alive (${stackName})`, () => {
  let server: TestGateway;
  const KEEPALIVE_MS = 500;
  before(async () => {
    server = await startTestGateway({ WS_KEEPALIVE_MS: String(KEEPALIVE_MS) });
  });
  after(async () => server?.close());

  const open = async (autoPong: boolean) => {
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { autoPong });
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
    return socket;
  };

  test('a client that stops answering pings is dropped; one that answers stays', async () => {
    const silent = await open(false);
    const alive = await open(true);
    let pings = 0;
    alive.on('ping', () => pings++);
    const started = Date.now();
    const code = await new Promise<number>((resolve) => silent.once('close', (c) => resolve(c)));
    const after = Date.now() - started;
    assert.equal(code, 1006, 'terminated, not closed politely: the peer is presumed gone');
    assert.ok(after >= KEEPALIVE_MS && after < KEEPALIVE_MS * 2 + 1_000, `dropped after ${after} ms: one interval to ping, one to wait`);

    await new Promise((resolve) => setTimeout(resolve, KEEPALIVE_MS * 2));
    assert.equal(alive.readyState, WebSocket.OPEN, 'the answering client is still connected');
    assert.ok(pings >= 2, `it was pinged (${pings} times)`);
    alive.send(JSON.stringify({ id: 'q', type: 'subscribe', payload: { query: '{ health { status } }' } }));
    const reply = await new Promise<{ type: string; payload?: { data?: unknown } }>((resolve) =>
      alive.once('message', (m) => resolve(JSON.parse(m.toString()))),
    );
    assert.equal(reply.type, 'next');
    alive.close();
  });
});
