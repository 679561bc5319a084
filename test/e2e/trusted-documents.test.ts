import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatDocument, stringifyDocument } from '@urql/core';
import { getOperationAST, parse, print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import type { Client } from 'graphql-ws';
import { documentHash, loadTrustedDocuments, manifestOf, trustedDocuments } from '../../src/server/trusted-documents.js';
import { MANIFEST_FILE, webDocuments } from '../../tools/persisted-documents.js';
import { apiKeysOf, bearer } from '../helpers/access.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

const codes = (errors: readonly GraphQLFormattedError[] | undefined) => (errors ?? []).map((error) => error.extensions?.code);
const AD_HOC = '{ prediction(symbol: "AAPL") { symbol signal confidence } }';

/**
 * Variables for each of the web app's operations, as its pages send them. An operation missing here
 * fails the test: a new web operation must be shown to pass under TRUSTED_DOCUMENTS_ONLY too.
 */
const VARIABLES: Record<string, Record<string, unknown>> = {
  BacktestChoices: {},
  BacktestRun: { strategy: 'direction-1d', symbols: ['AAPL'], from: '2024-01-01T00:00:00Z', to: '2024-06-30T00:00:00Z' },
  CompareModels: { strategy: 'direction-1d', a: 'v1', b: 'v2' },
  ConfidenceHistory: { symbol: 'AAPL', bucket: '1 day' },
  ModelDrift: { strategy: 'direction-1d', window: { from: '2024-01-01T00:00:00Z', to: '2024-03-31T00:00:00Z' } },
  PromotionDecisions: { last: 10 },
  RealizedMetrics: { strategy: 'direction-1d' },
  Signals: { symbols: ['AAPL', 'MSFT'] },
  Strategies: {},
  SymbolDetail: { symbol: 'AAPL', level: 0.9 },
  SymbolExplanation: { symbol: 'AAPL' },
  Symbols: {},
  Watchlist: { symbols: ['AAPL', 'MSFT'] },
  WatchlistHistory: { symbols: ['AAPL', 'MSFT'] },
};

/** What urql sends for a document: queries go through its cacheExchange, which adds `__typename` everywhere. */
function asUrqlSends(document: DocumentNode): string {
  const operation = getOperationAST(document);
  return stringifyDocument(operation?.operation === 'subscription' ? document : formatDocument(document));
}

/** The first result of a subscription over graphql-ws, or the error it was refused with. */
function firstEvent(client: Client, query: string, variables: Record<string, unknown>, timeoutMs: number) {
  return new Promise<{ data?: unknown; errors?: readonly GraphQLFormattedError[] }>((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`no event within ${timeoutMs} ms`));
    }, timeoutMs);
    const dispose = client.subscribe(
      { query, variables },
      {
        next: (value) => {
          clearTimeout(timer);
          dispose();
          resolve(value as { data?: unknown; errors?: readonly GraphQLFormattedError[] });
        },
        error: (error) => {
          clearTimeout(timer);
          if (Array.isArray(error)) resolve({ errors: error as GraphQLFormattedError[] });
          else reject(error instanceof Error ? error : new Error(String((error as { reason?: string }).reason ?? error)));
        },
        complete: () => undefined,
      },
    );
  });
}

describe('trusted documents: the registered set', () => {
  test('the committed manifest is what the generated web operations give (npm run codegen writes it)', async () => {
    const committed = JSON.parse(await readFile(MANIFEST_FILE, 'utf8')) as Record<string, string>;
    const documents = webDocuments();
    assert.deepEqual(committed, manifestOf(documents));
    const names = Object.values(committed).map((text) => getOperationAST(parse(text))?.name?.value);
    assert.deepEqual(names.sort(), Object.keys(VARIABLES).sort());
  });

  test("a client's own printing and its added __typename keep the hash; a one-character change does not", () => {
    for (const document of webDocuments()) {
      const hash = documentHash(document);
      assert.equal(documentHash(parse(asUrqlSends(document))), hash);
      assert.equal(documentHash(parse(print(document).replace(/\s+/g, ' '))), hash);
    }
    const text = Object.values(manifestOf(webDocuments())).find((entry) => entry.includes('history(last: 30)'));
    assert.ok(text, 'WatchlistHistory asks for history(last: 30)');
    assert.notEqual(documentHash(parse(text.replace('last: 30', 'last: 31'))), documentHash(parse(text)));
    // An aliased __typename is part of the answer's shape, not a cache's addition.
    assert.notEqual(documentHash(parse('{ symbols t: __typename }')), documentHash(parse('{ symbols }')));
  });

  test('a manifest whose key is not its document hash, or an empty one, stops start-up with the file named', async () => {
    assert.throws(
      () => trustedDocuments({ ['0'.repeat(64)]: '{ symbols }' }, 'm.json'),
      /m\.json: the entry 0+ holds a document whose hash is/,
    );
    assert.throws(() => trustedDocuments({ x: '{ symbols' }, 'm.json'), /does not parse/);
    assert.throws(() => trustedDocuments([], 'm.json'), /expected a JSON object/);
    const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-trusted-'));
    try {
      const file = path.join(dir, 'documents.json');
      await writeFile(file, '{}');
      await assert.rejects(loadTrustedDocuments(file), /registers no document/);
      await assert.rejects(loadTrustedDocuments(path.join(dir, 'missing.json')), /cannot be read .*npm run codegen/);
      await writeFile(file, JSON.stringify(manifestOf([parse('{ symbols }')])));
      assert.equal((await loadTrustedDocuments(file)).size, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe(`TRUSTED_DOCUMENTS_ONLY=true, AUTH_MODE=apikey (${stackName})`, () => {
  let server: TestGateway;
  const keys: Record<'viewer' | 'analyst' | 'admin', string> = { viewer: '', analyst: '', admin: '' };
  const manifest = manifestOf(webDocuments());
  const registered = Object.values(manifest);
  const byName = (name: string) => {
    const text = registered.find((entry) => getOperationAST(parse(entry))?.name?.value === name);
    assert.ok(text, name);
    return text;
  };
  before(async () => {
    server = await startTestGateway({ AUTH_MODE: 'apikey', TRUSTED_DOCUMENTS_ONLY: 'true', SYNTHETIC_TICK_MS: '250' });
    const access = apiKeysOf(server);
    for (const role of ['viewer', 'analyst', 'admin'] as const) keys[role] = (await access.create(role)).key;
  });
  after(async () => server.close());

  test("every one of the web app's operations runs for a viewer, sent as urql sends it, over HTTP and graphql-ws", async () => {
    const ws = wsClient(server.url, { connectionParams: { authorization: `Bearer ${keys.viewer}` } });
    try {
      for (const document of webDocuments()) {
        const operation = getOperationAST(document);
        const name = operation?.name?.value ?? '';
        const variables = VARIABLES[name];
        assert.ok(variables, `variables for ${name}`);
        const query = asUrqlSends(document);
        const results =
          operation?.operation === 'subscription'
            ? [await firstEvent(ws, query, variables, 5_000)]
            : [await postQuery(server.url, query, variables, bearer(keys.viewer)), await wsExecute(ws, query, variables)];
        for (const result of results) {
          // Only the role check of an analyst field may refuse a viewer here, never the document itself.
          for (const code of codes(result.errors)) assert.equal(code, 'FORBIDDEN', `${name}: ${JSON.stringify(result.errors)}`);
          if (result.errors === undefined) assert.ok(result.data, name);
        }
      }
      // Those a viewer may read come back whole (the rest need the analyst role, as without trusted documents).
      const watchlist = await postQuery<{ predictions: { symbol: string }[] }>(
        server.url,
        byName('Watchlist'),
        VARIABLES.Watchlist,
        bearer(keys.viewer),
      );
      assert.equal(watchlist.errors, undefined);
      assert.deepEqual(
        watchlist.data?.predictions.map((p) => p.symbol),
        ['AAPL', 'MSFT'],
      );
      const signal = (await firstEvent(ws, byName('Signals'), VARIABLES.Signals!, 5_000)) as { data?: { signals: { symbol: string } } };
      assert.ok(['AAPL', 'MSFT'].includes(signal.data?.signals.symbol ?? ''));
    } finally {
      await ws.dispose();
    }
  });

  test('any other operation is 403 FORBIDDEN_OPERATION for a viewer and for an anonymous caller, over HTTP and graphql-ws', async () => {
    const watchlistHistory = byName('WatchlistHistory');
    const reformatted = byName('Watchlist').replace('symbols: $symbols', 'symbols:$symbols') + ' '; // the same operation
    const oneLiteralOff = watchlistHistory.replace('last: 30', 'last: 31');
    assert.notEqual(oneLiteralOff, watchlistHistory);
    const refused = [AD_HOC, oneLiteralOff, '{ symbols t: __typename }', '{ health { status } }'];
    for (const authorization of [bearer(keys.viewer), {}]) {
      for (const query of refused) {
        const http = await postQuery(server.url, query, { symbols: ['AAPL'] }, authorization);
        assert.equal(http.status, 403, query);
        assert.deepEqual(codes(http.errors), ['FORBIDDEN_OPERATION'], query);
        assert.equal(http.data, undefined);
        assert.match(http.errors?.[0]?.message ?? '', /registered trusted documents .*analyst/);
        assert.equal(http.errors?.[0]?.extensions?.requiredRole, 'analyst');
      }
      const ws = wsClient(server.url, 'authorization' in authorization ? { connectionParams: authorization } : {});
      try {
        for (const query of refused) {
          assert.deepEqual(codes((await wsExecute(ws, query, { symbols: ['AAPL'] })).errors), ['FORBIDDEN_OPERATION'], query);
        }
        const subscription = 'subscription { signals(symbols: ["AAPL"]) { symbol confidence } }';
        assert.deepEqual(codes((await firstEvent(ws, subscription, {}, 5_000)).errors), ['FORBIDDEN_OPERATION']);
      } finally {
        await ws.dispose();
      }
    }
    // Whitespace is not a different operation.
    const same = await postQuery(server.url, reformatted, VARIABLES.Watchlist, bearer(keys.viewer));
    assert.equal(same.errors, undefined);
    // Anonymous callers pass the document check with a registered one, then meet the role check as before.
    const anonymous = await postQuery(server.url, byName('Symbols'), {});
    assert.deepEqual(codes(anonymous.errors), ['UNAUTHENTICATED']);
  });

  test('analysts and admins run anything, on both transports', async () => {
    for (const role of ['analyst', 'admin'] as const) {
      const http = await postQuery<{ prediction: { symbol: string } }>(server.url, AD_HOC, undefined, bearer(keys[role]));
      assert.equal(http.errors, undefined, role);
      assert.equal(http.data?.prediction.symbol, 'AAPL');
      const ws = wsClient(server.url, { connectionParams: { authorization: `Bearer ${keys[role]}` } });
      try {
        const over = await wsExecute<{ prediction: { symbol: string } }>(ws, AD_HOC);
        assert.equal(over.errors, undefined, role);
        const event = await firstEvent(ws, 'subscription { signals(symbols: ["AAPL"]) { symbol confidence } }', {}, 5_000);
        assert.equal(event.errors, undefined, role);
        assert.equal((event.data as { signals: { symbol: string } }).signals.symbol, 'AAPL');
      } finally {
        await ws.dispose();
      }
    }
  });
});
