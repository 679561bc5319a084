import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLFormattedError } from 'graphql';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';
import { SignalRecorder } from '../helpers/signals.js';

const UNIVERSE = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'META', 'TSLA', 'BRK.B', 'JPM', 'V'];
const symbols = (n: number) => Array.from({ length: n }, (_, i) => UNIVERSE[i % UNIVERSE.length]!);

/** Variables nested `depth` deep, as JSON text: a client's JSON.stringify cannot even produce them. */
const deepJson = (depth: number) => `${'['.repeat(depth)}"AAPL"${']'.repeat(depth)}`;
const DEEP_QUERY = 'query($s: [String!]!) { predictions(symbols: $s) { symbol } }';

/** A raw graphql-transport-ws connection, acknowledged: for messages a graphql-ws client would not send. */
async function rawSocket(
  url: string,
): Promise<{ socket: WebSocket; next(id: string): Promise<Record<string, unknown>>; closed: Promise<number> }> {
  const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data: Buffer) => {
    messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  const next = async (id: string) => {
    for (;;) {
      const index = messages.findIndex((m) => m.id === id || (id === '' && m.type === 'connection_ack'));
      if (index >= 0) return messages.splice(index, 1)[0]!;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  await next('');
  return { socket, next, closed };
}

const first = (errors: readonly GraphQLFormattedError[] | undefined) => errors?.[0]?.extensions ?? {};

describe(`abuse limits fail closed, on HTTP and graphql-ws (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    // A small in-flight budget (two 60-symbol requests at most), so a leaked lease shows as a refusal.
    server = await startTestGateway({
      INFLIGHT_COST_BUDGET: '130',
      INFLIGHT_QUEUE_MS: '300',
      MAX_RESPONSE_ITEMS: '100',
      SYNTHETIC_TICK_MS: '200',
    });
  });
  after(async () => server.close());

  test('variables nested 5,000 and 30,000 deep: 400 BAD_USER_INPUT over POST and GET, an error message over graphql-ws (the socket stays open)', async () => {
    // 30,000 levels: as deep as MAX_BODY_BYTES (64 KiB) allows.
    for (const depth of [5_000, 30_000]) {
      const post = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"query":${JSON.stringify(DEEP_QUERY)},"variables":{"s":${deepJson(depth)}}}`,
      });
      assert.equal(post.status, 400);
      const body = (await post.json()) as { errors?: GraphQLFormattedError[] };
      assert.deepEqual(first(body.errors), { code: 'BAD_USER_INPUT', limit: 'variablesDepth', max: 32 });
    }

    const get = await fetch(
      `${server.url}/graphql?query=${encodeURIComponent(DEEP_QUERY)}&variables=${encodeURIComponent(`{"s":${deepJson(1_000)}}`)}`,
      {
        headers: { 'apollo-require-preflight': 'true' },
      },
    );
    assert.equal(get.status, 400);
    assert.equal(first(((await get.json()) as { errors?: GraphQLFormattedError[] }).errors).code, 'BAD_USER_INPUT');

    const ws = await rawSocket(server.url);
    try {
      for (const [id, depth] of [
        ['1', 5_000],
        ['3', 30_000],
      ] as const) {
        ws.socket.send(
          `{"id":"${id}","type":"subscribe","payload":{"query":${JSON.stringify(DEEP_QUERY)},"variables":{"s":${deepJson(depth)}}}}`,
        );
        const answer = await ws.next(id);
        assert.equal(answer.type, 'error');
        assert.equal((answer.payload as GraphQLFormattedError[])[0]?.extensions?.code, 'BAD_USER_INPUT');
      }
      ws.socket.send(JSON.stringify({ id: '2', type: 'subscribe', payload: { query: '{ health { status } }' } }));
      assert.equal((await ws.next('2')).type, 'next', 'the connection still serves');
    } finally {
      ws.socket.close();
    }
  });

  test('the fragment attack of issue 17 plus 28 aliased 200-symbol predictions: QUERY_TOO_COMPLEX on both transports', async () => {
    const spreads = (name: string) => Array.from({ length: 30 }, () => `...${name}`).join(' ');
    const aliases = Array.from(
      { length: 28 },
      (_, i) => `p${i}: predictions(symbols: $s) { symbol signal probability confidence quote { close } }`,
    ).join(' ');
    const query = `query Q($s: [String!]!) { ...A ${aliases} } fragment A on Query { ${spreads('B')} } fragment B on Query { ${spreads('C')} } fragment C on Query { __typename }`;
    const variables = { s: symbols(200) };
    const http = await postQuery(server.url, query, variables);
    assert.equal(http.status, 400);
    assert.equal(http.data, undefined);
    assert.equal(first(http.errors).code, 'QUERY_TOO_COMPLEX');
    assert.equal(first(http.errors).limit, 'cost');
    assert.ok((first(http.errors).actual as number) >= 28 * 200 * 7);
    const client = wsClient(server.url);
    try {
      const ws = await wsExecute(client, query, variables);
      assert.equal(first(ws.errors).code, 'QUERY_TOO_COMPLEX');
    } finally {
      await client.dispose();
    }
  });

  test('a response past MAX_RESPONSE_ITEMS is one QUERY_TOO_COMPLEX error, no partial data, on both transports', async () => {
    // 10 predictions' model features: a list without a size argument, counted as it resolves.
    const query = 'query($s: [String!]!) { predictions(symbols: $s) { model { features } } }';
    const http = await postQuery(server.url, query, { s: symbols(10) });
    assert.equal(http.status, 400, JSON.stringify(http).slice(0, 300));
    assert.equal(http.data, undefined);
    assert.deepEqual(first(http.errors), { code: 'QUERY_TOO_COMPLEX', limit: 'responseItems', max: 100 });
    const client = wsClient(server.url);
    try {
      const ws = await wsExecute(client, query, { s: symbols(10) });
      assert.equal(ws.data, undefined);
      assert.deepEqual(first(ws.errors), { code: 'QUERY_TOO_COMPLEX', limit: 'responseItems', max: 100 });
      // Under the cap: served.
      const small = await wsExecute<{ predictions: unknown[] }>(client, query, { s: symbols(1) });
      assert.equal(small.errors, undefined);
    } finally {
      await client.dispose();
    }
  });

  test('every way an operation ends gives its in-flight share back: failures, refusals, aborted requests, both transports', async () => {
    const big = 'query($s: [String!]!) { predictions(symbols: $s) { symbol } }'; // 60 symbols: 120 of the budget's 130
    const client = wsClient(server.url);
    try {
      for (let round = 0; round < 3; round++) {
        await Promise.all([
          postQuery(server.url, '{ prediction(symbol: "NOPE") { symbol } }'), // fails in execution
          postQuery(server.url, 'query($s: [String!]!) { predictions(symbols: $s) { model { features } } }', { s: symbols(10) }), // over the item cap
          wsExecute(client, '{ prediction(symbol: "NOPE") { symbol } }'),
          wsExecute(client, 'query($s: [String!]!) { predictions(symbols: $s) { model { features } } }', { s: symbols(10) }),
        ]);
        // A request whose client goes away mid-flight.
        const aborted = new AbortController();
        const pending = fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: big, variables: { s: symbols(60) } }),
          signal: aborted.signal,
        }).catch(() => undefined);
        aborted.abort();
        await pending;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Had any of those kept its share, 120 more would not fit: the wait would end in RATE_LIMITED.
      for (const answer of [await postQuery(server.url, big, { s: symbols(60) }), await wsExecute(client, big, { s: symbols(60) })]) {
        assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      }
      // Two at once exceed the budget: the second waits for the first and is served.
      const both = await Promise.all([postQuery(server.url, big, { s: symbols(60) }), wsExecute(client, big, { s: symbols(60) })]);
      for (const answer of both) assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    } finally {
      await client.dispose();
    }
  });

  test('a subscription holds the budget while it starts, each event only its own share: queries keep being admitted, events keep coming', async () => {
    const client = wsClient(server.url);
    try {
      // 60 symbols × (1 + 3) = 240: more than the whole budget, taken alone while the subscription starts.
      const recorder = new SignalRecorder(client, { symbols: symbols(60) });
      await recorder.until((r) => r.messages.length >= 1, 20_000, 'a first signal');
      for (let i = 0; i < 5; i++) {
        const answer = await postQuery(server.url, 'query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: symbols(60) });
        assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      }
      const seen = recorder.messages.length;
      await recorder.until((r) => r.messages.length > seen, 20_000, 'more signals');
      assert.equal(recorder.errors, undefined);
      recorder.dispose();
    } finally {
      await client.dispose();
    }
  });
});
