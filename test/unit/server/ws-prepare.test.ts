import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { GraphQLError, specifiedRules, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { startRootSpan } from '../../../src/infra/tracing/tracing.js';
import { Role, type Principal } from '../../../src/modules/access/index.js';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { createAdmission } from '../../../src/server/admission.js';
import { formatGraphQLError } from '../../../src/server/errors.js';
import { InflightBudget } from '../../../src/server/inflight.js';
import { limitRules } from '../../../src/server/limits.js';
import { createWsPrepare, type PrepareRequest, type Prepared } from '../../../src/server/ws.prepare.js';

const PREDICTIONS = 'query P($s: [String!]!) { predictions(symbols: $s) { symbol } }';
const SIGNALS = 'subscription S($s: [String!]!) { signals(symbols: $s) { symbol } }';

let schema: GraphQLSchema;
before(async () => {
  schema = await buildGatewaySchema();
});

/** The real admission over the gateway's schema, with an in-flight budget whose use shows every lease. */
function setup(overrides: { maxSubscriptions?: number; maxTokens?: number } = {}) {
  const inflight = new InflightBudget(10_000, { maxWaitMs: 10, maxQueue: 10 });
  const admission = createAdmission({
    schema,
    maxCost: 1_000,
    maxListSize: 50,
    maxVariablesDepth: 4,
    rateLimiter: undefined,
    inflight,
    authEnabled: true,
  });
  const prepare = createWsPrepare({
    schema,
    validationRules: [...specifiedRules, ...limitRules({ maxDepth: 8, maxAliases: 5 })],
    admission,
    maxTokens: overrides.maxTokens ?? 500,
    maxSubscriptions: overrides.maxSubscriptions ?? 2,
  });
  return { prepare, inflight };
}

function request(payload: PrepareRequest['payload'], extra: Partial<PrepareRequest> = {}) {
  const resolved: Array<{ type: string; name: string | undefined }> = [];
  const checks = { count: 0 };
  const r: PrepareRequest = {
    payload,
    span: startRootSpan('test'),
    principal: undefined,
    clientAddress: '127.0.0.1',
    subscriptionsRunning: 0,
    onResolved: (operation: OperationDefinitionNode, name) => void resolved.push({ type: operation.operation, name }),
    checkCredential: async () => (checks.count++, undefined),
    ...extra,
  };
  return { r, resolved, checks };
}

/** What the client is sent: the transports' one formatter (errors.ts). */
const sentCodes = (result: Prepared | readonly GraphQLError[]) =>
  (result as GraphQLError[]).map((e) => formatGraphQLError(e.toJSON(), true, e).extensions?.code);
const codes = (result: Prepared | readonly GraphQLError[]) =>
  Array.isArray(result) ? result.map((e: GraphQLError) => e.extensions.code) : 'prepared';

describe('ws prepare: the order of its steps and the codes it gives', () => {
  test('a valid query is prepared: its operation resolved, its cost held in the in-flight budget until released', async () => {
    const { prepare, inflight } = setup();
    const { r, resolved, checks } = request({ query: PREDICTIONS, operationName: 'P', variables: { s: ['AAPL', 'MSFT'] } });
    const prepared = await prepare(r);
    assert.ok(!Array.isArray(prepared));
    const { operation, cost, lease } = prepared as Prepared;
    assert.equal(operation.operation, 'query');
    assert.deepEqual(resolved, [{ type: 'query', name: 'P' }]);
    assert.equal(checks.count, 1);
    assert.ok(cost > 0);
    assert.equal(inflight.inUse, cost);
    lease.release();
    assert.equal(inflight.inUse, 0);
  });

  test('parse failures are GRAPHQL_PARSE_FAILED; past maxTokens the client sees the limit code (errors.ts, as over HTTP); nothing later runs', async () => {
    const { prepare, inflight } = setup({ maxTokens: 20 });
    for (const [query, sent] of [
      ['query {', 'GRAPHQL_PARSE_FAILED'],
      [`{ ${'a '.repeat(40)}}`, 'QUERY_TOO_COMPLEX'],
    ] as const) {
      const { r, resolved, checks } = request({ query });
      const result = await prepare(r);
      assert.deepEqual(codes(result), ['GRAPHQL_PARSE_FAILED'], query);
      assert.deepEqual(sentCodes(result), [sent], query);
      assert.equal(resolved.length + checks.count, 0);
    }
    assert.equal(inflight.inUse, 0);
  });

  test('validation failures are GRAPHQL_VALIDATION_FAILED (the same rules as HTTP: a limit rule gives its own code); an ambiguous operation is OPERATION_RESOLUTION_FAILURE', async () => {
    const { prepare } = setup();
    assert.deepEqual(codes(await prepare(request({ query: '{ nope }' }).r)), ['GRAPHQL_VALIDATION_FAILED']);
    const aliases = await prepare(request({ query: `{ ${Array.from({ length: 6 }, (_, i) => `a${i}: __typename`).join(' ')} }` }).r);
    assert.deepEqual(codes(aliases), ['GRAPHQL_VALIDATION_FAILED']);
    assert.deepEqual(sentCodes(aliases), ['QUERY_TOO_COMPLEX']);
    const { r, resolved, checks } = request({ query: 'query A { __typename } query B { __typename }' });
    assert.deepEqual(codes(await prepare(r)), ['OPERATION_RESOLUTION_FAILURE']);
    assert.equal(resolved.length + checks.count, 0);
  });

  test('a credential that no longer holds is sent instead, after the operation is resolved and before anything is charged', async () => {
    const { prepare, inflight } = setup();
    const refusal = new GraphQLError('Not authenticated: revoked', { extensions: { code: 'UNAUTHENTICATED' } });
    const { r, resolved } = request({ query: PREDICTIONS, variables: { s: ['A'] } }, { checkCredential: async () => refusal });
    const result = await prepare(r);
    assert.deepEqual(result, [refusal]);
    assert.deepEqual(resolved, [{ type: 'query', name: 'P' }]);
    assert.equal(inflight.inUse, 0);
  });

  test('admission is the HTTP one: variables too deep, a list too long, introspection without the role', async () => {
    const { prepare, inflight } = setup();
    const deepVariables = { s: ['A'], x: [[[[['too deep']]]]] };
    assert.deepEqual(codes(await prepare(request({ query: PREDICTIONS, variables: deepVariables }).r)), ['BAD_USER_INPUT']);
    const long = Array.from({ length: 51 }, (_, i) => `S${i}`);
    assert.deepEqual(codes(await prepare(request({ query: PREDICTIONS, variables: { s: long } }).r)), ['BAD_USER_INPUT']);
    assert.deepEqual(codes(await prepare(request({ query: '{ __schema { queryType { name } } }' }).r)), ['UNAUTHENTICATED']);
    const reader: Principal = { id: 'r', name: 'r', role: Role.Viewer, via: 'apikey' };
    assert.deepEqual(codes(await prepare(request({ query: '{ __schema { queryType { name } } }' }, { principal: reader }).r)), [
      'FORBIDDEN',
    ]);
    assert.equal(inflight.inUse, 0);
  });

  test('subscriptions: at most maxSubscriptions per connection; the refused one gives its lease back', async () => {
    const { prepare, inflight } = setup({ maxSubscriptions: 2 });
    const payload = { query: SIGNALS, operationName: 'S', variables: { s: ['A', 'B'] } };
    const ok = await prepare(request(payload, { subscriptionsRunning: 1 }).r);
    assert.equal((ok as Prepared).operation.operation, 'subscription');
    (ok as Prepared).lease.release();
    const { r, resolved } = request(payload, { subscriptionsRunning: 2 });
    const refused = await prepare(r);
    assert.deepEqual(codes(refused), ['BAD_USER_INPUT']);
    assert.match((refused as GraphQLError[])[0]!.message, /already has 2 subscriptions running/);
    assert.deepEqual(resolved, [{ type: 'subscription', name: 'S' }]);
    assert.equal(inflight.inUse, 0);
    // queries are not counted against the subscription cap
    const query = await prepare(request({ query: PREDICTIONS, variables: { s: ['A'] } }, { subscriptionsRunning: 99 }).r);
    assert.equal((query as Prepared).operation.operation, 'query');
  });

  test('a failure that is not a GraphQL error (a bug) rejects rather than being sent as a refusal', async () => {
    const { prepare } = setup();
    const { r } = request(
      { query: PREDICTIONS, variables: { s: ['A'] } },
      { checkCredential: async () => Promise.reject(new Error('bug')) },
    );
    await assert.rejects(prepare(r), /bug/);
  });
});
