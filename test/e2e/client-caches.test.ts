import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { format, isDeepStrictEqual } from 'node:util';
import { OperationTypeNode } from 'graphql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { decodeEntityId } from '../../src/domain/entity-ids.js';
import {
  HealthDocument,
  LiveSignalsDocument,
  PastPredictionDocument,
  WatchedPredictionDocument,
  WatchedPredictionsDocument,
  type LivePredictionFragment,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';
import { until } from '../helpers/wait.js';

/**
 * Real third-party client caches against the gateway, configured as their docs' quick starts are:
 * Apollo Client 4 with an InMemoryCache without typePolicies, and urql with graphcache without `keys`.
 * Both must normalise Sibyl's entities by their `id`, so one `signals` event updates every watched
 * query that shows that symbol, and neither may log a warning (Apollo's "Cache data may be lost",
 * "Missing field"; graphcache's "Invalid key") while doing it.
 */

// Apollo Client 4 reads `globalThis.__DEV__` once, when its modules load: set before they are
// imported, so its development-only checks (the data-loss and missing-field warnings) run.
(globalThis as { __DEV__?: boolean }).__DEV__ = true;
const apollo = await import('@apollo/client');
const { GraphQLWsLink } = await import('@apollo/client/link/subscriptions');
const { loadDevMessages, loadErrorMessages } = await import('@apollo/client/dev');
const urql = await import('@urql/core');
const { cacheExchange } = await import('@urql/exchange-graphcache');
// Apollo's warnings are numbered codes unless its message texts are loaded.
loadDevMessages();
loadErrorMessages();

const SYMBOLS = ['AAPL', 'MSFT'];
const TICK_MS = 400;

/** Everything written to the console while `capture` is on: the clients' warnings go there. */
const consoleOutput: string[] = [];
const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originals = Object.fromEntries(methods.map((m) => [m, console[m]])) as Record<(typeof methods)[number], (...args: unknown[]) => void>;
function captureConsole(): void {
  for (const m of methods) console[m] = (...args: unknown[]) => void consoleOutput.push(`console.${m}: ${format(...args)}`);
}
/** Takes what was captured since `from`. */
function takeConsole(from = 0): string[] {
  return consoleOutput.splice(from);
}
function restoreConsole(): void {
  for (const m of methods) console[m] = originals[m];
}

/** The latest value an observable emitted, and how many it emitted. */
class Latest<T> {
  value: T | undefined;
  count = 0;
  error: unknown;
  readonly next = (value: T) => {
    this.value = value;
    this.count++;
  };
}

type Live = LivePredictionFragment;

describe(`client caches normalise Sibyl's entities without configuration (${stackName})`, () => {
  let server: TestGateway;
  const ws: WsClient[] = [];
  const wsLink = () => {
    const client = createWsClient({ url: `${server.url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    ws.push(client);
    return client;
  };

  before(async () => {
    assert.notEqual(process.env.NODE_ENV, 'production', "graphcache's warnings are development-only");
    server = await startTestGateway({ SYNTHETIC_TICK_MS: String(TICK_MS), SIGNALS_INTERVAL_MS: '0' });
    captureConsole();
  });
  after(async () => {
    restoreConsole();
    await Promise.all(ws.map((c) => c.dispose()));
    await server.close();
  });

  test('the console capture sees an Apollo data-loss warning when one is due (so its silence below means something)', () => {
    const cache = new apollo.InMemoryCache();
    const query = apollo.gql`
      query Probe {
        probe {
          id
          value {
            a
            b
          }
        }
      }
    `;
    const narrower = apollo.gql`
      query Probe {
        probe {
          id
          value {
            a
          }
        }
      }
    `;
    const before = consoleOutput.length;
    cache.writeQuery({ query, data: { probe: { __typename: 'Probe', id: '1', value: { __typename: 'ProbeValue', a: 1, b: 2 } } } });
    cache.writeQuery({ query: narrower, data: { probe: { __typename: 'Probe', id: '1', value: { __typename: 'ProbeValue', a: 3 } } } });
    const seen = takeConsole(before);
    assert.ok(
      seen.some((line) => line.includes('Cache data may be lost when replacing the value field of a Probe object')),
      seen.join('\n'),
    );
  });

  test('Apollo Client 4 (InMemoryCache, no typePolicies, GraphQLWsLink): a signals event updates every watched query of its symbol', async () => {
    const cache = new apollo.InMemoryCache();
    const client = new apollo.ApolloClient({
      cache,
      link: apollo.ApolloLink.split(
        ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
        new GraphQLWsLink(wsLink()),
        new apollo.HttpLink({ uri: `${server.url}/graphql` }),
      ),
    });
    const list = new Latest<Live[]>();
    const single = new Latest<Live>();
    const past = new Latest<Live & { pointInTime: unknown }>();
    const subscriptions = [
      client.watchQuery({ query: WatchedPredictionsDocument, variables: { symbols: SYMBOLS } }).subscribe({
        next: (r) => r.dataState === 'complete' && list.next(r.data.predictions as Live[]),
        error: (e) => (list.error = e),
      }),
      client.watchQuery({ query: WatchedPredictionDocument, variables: { symbol: 'AAPL' } }).subscribe({
        next: (r) => r.dataState === 'complete' && single.next(r.data.prediction),
        error: (e) => (single.error = e),
      }),
    ];
    try {
      await until(() => list.value !== undefined && single.value !== undefined, 'both watched queries answered', 15_000);
      const initial = list.value!.find((p) => p.symbol === 'AAPL')!;
      const msft = list.value!.find((p) => p.symbol === 'MSFT')!;

      // A point-in-time answer for the same symbol, as of the bar the live one was made on: another entity.
      subscriptions.push(
        client.watchQuery({ query: PastPredictionDocument, variables: { symbol: 'AAPL', asOf: initial.asOf } }).subscribe({
          next: (r) => r.dataState === 'complete' && past.next(r.data.prediction),
          error: (e) => (past.error = e),
        }),
      );
      await until(() => past.value !== undefined || past.error !== undefined, 'the point-in-time query answered', 15_000);
      assert.equal(past.error, undefined, String(past.error));
      const pastAnswer = past.value!;
      assert.notEqual(pastAnswer.id, initial.id, 'a point-in-time prediction is not the live entity');
      assert.deepEqual(decodeEntityId(initial.id), ['Prediction', 'direction-1d', 'AAPL']);

      const events: Live[] = [];
      const signals = client.subscribe({ query: LiveSignalsDocument, variables: { symbols: ['AAPL'] } }).subscribe({
        next: (r) => r.data?.signals && events.push(r.data.signals),
      });
      subscriptions.push(signals);
      const newer = () => events.find((e) => Date.parse(e.asOf) > Date.parse(initial.asOf));
      await until(() => newer() !== undefined, 'a signal on a bar newer than the watched answer', 30_000);
      // No more events from here, so what the watched queries settle on is the last one received.
      signals.unsubscribe();
      const event = newer()!;
      assert.equal(event.id, initial.id, 'the event is the same entity as the live prediction');

      // Both watched queries now show the last event without being re-run over HTTP.
      const latest = events.at(-1)!;
      const aapl = () => list.value!.find((p) => p.symbol === 'AAPL');
      await until(() => isDeepStrictEqual(aapl(), latest) && isDeepStrictEqual(single.value, latest), 'the watched queries updated', 5_000);
      const inList = aapl()!;
      assert.ok(Date.parse(inList.asOf) > Date.parse(initial.asOf));
      assert.equal(inList.quote.id, latest.quote.id);
      assert.deepEqual(
        list.value!.find((p) => p.symbol === 'MSFT'),
        msft,
        'a symbol with no event is untouched',
      );
      // The point-in-time answer kept its own data: the event did not overwrite it.
      assert.deepEqual(past.value, pastAnswer);

      const stored = cache.extract() as Record<string, { __typename?: string } | undefined>;
      assert.ok(stored[`Prediction:${initial.id}`], 'the live prediction is a normalised entity');
      assert.ok(stored[`Prediction:${pastAnswer.id}`], 'the point-in-time one is another');
      assert.ok(stored[`ModelVersion:${initial.model.id}`]);
      assert.ok(stored[`Quote:${latest.quote.id}`]);
      assert.ok(stored[`PriceInterval:${latest.interval.id}`]);
      const root = stored.ROOT_QUERY as Record<string, unknown>;
      assert.deepEqual(root['predictions({"symbols":["AAPL","MSFT"]})'], [
        { __ref: `Prediction:${initial.id}` },
        { __ref: `Prediction:${msft.id}` },
      ]);
      assert.deepEqual(consoleOutput, [], 'Apollo printed nothing');
    } finally {
      for (const s of subscriptions) s.unsubscribe();
      client.stop();
    }
  });

  test('urql with graphcache (no keys config): the same operations normalise, the watched query follows the signal', async () => {
    const socket = wsLink();
    const client = new urql.Client({
      url: `${server.url}/graphql`,
      // urql sends queries as GET by default, which the gateway's CSRF prevention refuses without an
      // `apollo-require-preflight` header; the web app (web/src/api/client.ts) posts, as here.
      preferGetMethod: false,
      exchanges: [
        cacheExchange(),
        urql.fetchExchange,
        urql.subscriptionExchange({
          forwardSubscription: (request) => ({
            subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? '' }, sink) }),
          }),
        }),
      ],
    });
    const list = new Latest<Live[]>();
    const watched = client.query(WatchedPredictionsDocument, { symbols: SYMBOLS }).subscribe((r) => {
      if (r.error) list.error = r.error;
      if (r.data?.predictions) list.next(r.data.predictions as Live[]);
    });
    const events: Live[] = [];
    let signals: { unsubscribe(): void } | undefined;
    try {
      await until(() => list.value !== undefined || list.error !== undefined, 'the watched query answered', 15_000);
      assert.equal(list.error, undefined, String(list.error));
      const initial = list.value!.find((p) => p.symbol === 'AAPL')!;
      const msft = list.value!.find((p) => p.symbol === 'MSFT')!;
      signals = client.subscription(LiveSignalsDocument, { symbols: ['AAPL'] }).subscribe((r) => {
        if (r.data?.signals) events.push(r.data.signals);
      });
      const newer = () => events.find((e) => Date.parse(e.asOf) > Date.parse(initial.asOf));
      await until(() => newer() !== undefined, 'a signal on a bar newer than the watched answer', 30_000);
      // No more events from here, so what the watched query settles on is the last one received.
      signals.unsubscribe();
      const latest = events.at(-1)!;
      assert.ok(Date.parse(latest.asOf) > Date.parse(initial.asOf));
      const strip = <T>(value: T): T => JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === '__typename' ? undefined : v))) as T;
      await until(
        () => isDeepStrictEqual(strip(list.value!.find((p) => p.symbol === 'AAPL')), strip(latest)),
        'the watched query updated from the cache',
        5_000,
      );
      assert.deepEqual(
        list.value!.find((p) => p.symbol === 'MSFT'),
        msft,
        'a symbol with no event is untouched',
      );
      // graphcache answers the same query from its normalised records, without the network.
      const cached = client.readQuery(WatchedPredictionsDocument, { symbols: SYMBOLS });
      assert.equal(cached?.data?.predictions[0]?.id, initial.id);
      assert.deepEqual(strip(cached?.data?.predictions[0]), strip(latest));
      assert.deepEqual(
        consoleOutput.filter((line) => /Invalid key|graphcache|urql/i.test(line)),
        [],
      );
      assert.deepEqual(consoleOutput, [], 'urql printed nothing');

      // The control: a value type without an id (Health) does make graphcache warn, and the capture sees it.
      await client.query(HealthDocument, {}).toPromise();
      const seen = takeConsole();
      assert.ok(
        seen.some((line) => line.includes('Invalid key') && line.includes('Health')),
        seen.join('\n'),
      );
    } finally {
      signals?.unsubscribe();
      watched.unsubscribe();
    }
  });
});
