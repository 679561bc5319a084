import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  getIntrospectionQuery,
  Kind,
  parse,
  print,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLError,
  type OperationDefinitionNode,
} from 'graphql';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import type { Principal } from '../../src/modules/access/index.js';
import { createOperationExecutor, type OperationExecutor } from '../../src/server/compiled-execution.js';
import { formatGraphQLError } from '../../src/server/errors.js';
import * as generated from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';

/**
 * Differential test of compiled execution: every operation of test/operations (and a few written here
 * for what those do not exercise), with ordinary, mistaken and refused variables, as admin, viewer and
 * anonymous, executed against the real gateway's schema, services and per-request context twice, by
 * graphql-js and by the compiled executor, back to back on the same state. The answers must be the same:
 * data byte for byte, and the same errors with the same codes, paths and locations, as the client sees
 * them (formatted by errors.ts, as in production) and as errors.ts and the logs read them.
 */
const SYMBOLS = Array.from({ length: 8 }, (_, i) => `S${String(i).padStart(2, '0')}`);
const FROM = '2024-05-01T00:00:00.000Z';
const TO = '2024-07-15T00:00:00.000Z';

/** Variables per operation name: the ordinary case first, then mistakes. */
const CASES: Record<string, ReadonlyArray<Record<string, unknown>>> = {
  Predictions: [
    { symbols: ['S01', 'S02', 'NOPE'] },
    { symbols: ['S01'], level: 0.8 },
    { symbols: ['S01', 'S02'], level: 0.5 },
    { symbols: ['S01'], strategy: 'no-such-strategy' },
    { symbols: 5 },
    { symbols: [1, 2] },
    {},
  ],
  Prediction: [{ symbol: 'S03' }, { symbol: 'NOPE' }, { symbol: 'S03', strategy: 'direction-5d' }],
  Strategies: [{}],
  StrategyPromotions: [{ last: 5 }, {}, { last: 0 }],
  StrategyPromotionsBrief: [{ last: 1 }],
  WatchedPredictions: [{ symbols: ['S01', 'S04'] }],
  WatchedPrediction: [{ symbol: 'S04' }],
  PastPrediction: [
    { symbol: 'S01', asOf: '2024-06-03T00:00:00Z' },
    { symbol: 'S01', asOf: 'yesterday' },
  ],
  PointInTimePredictions: [
    { symbols: ['S01', 'S02'], asOf: '2024-06-03T00:00:00Z' },
    { symbols: ['S01'], version: 'v1' },
    { symbols: ['S01'], version: 'v404' },
    { symbols: ['S01'], asOf: '2999-01-01T00:00:00Z' },
  ],
  PointInTimePrediction: [{ symbol: 'S02', asOf: '2024-05-20T00:00:00Z' }],
  Health: [{}],
  Backtest: [
    { strategy: 'direction-1d', symbols: ['S01', 'S02', 'S03'], from: FROM, to: TO },
    { strategy: 'direction-1d', symbols: ['S01'], from: TO, to: FROM },
  ],
  Drift: [
    { strategy: 'direction-1d', window: { from: FROM, to: TO }, symbols: ['S01', 'S02'] },
    { strategy: 'direction-1d', window: { from: FROM } },
  ],
  Explanations: [{ symbols: ['S01', 'S02'] }],
  ExplanationOfOne: [{ symbol: 'S05' }],
  ExplanationsOfBothStrategies: [{ symbols: ['S06'] }],
  ConfidenceHistory: [{ symbol: 'S01' }, { symbol: 'S01', bucket: 'fortnight' }],
  ConfidenceTrends: [{ symbols: ['S01', 'S02', 'NOPE'] }],
  PredictionsWithHistory: [
    { symbols: ['S01', 'S02'], last: 3 },
    { symbols: ['S01'], last: -1 },
  ],
  ModelMetrics: [{ strategy: 'direction-1d' }, { strategy: 'direction-1d', version: 'v404' }],
  OfflineEstimates: [{}],
  StrategyVersions: [{}],
  ServedVersions: [{ symbols: ['S01', 'S07'] }],
  CompareModels: [{ strategy: 'direction-1d', a: 'v1', b: 'v1' }],
  // Mutations that leave the state as they found it, so both engines start from the same one.
  SetShadowModelVersion: [{ strategy: 'direction-1d', version: null }],
  ActivateModelVersion: [
    { strategy: 'direction-1d', version: 'v1' },
    { strategy: 'direction-1d', version: 'v404' },
  ],
  RollbackModelVersion: [{ strategy: 'direction-5d' }],
};

/** What test/operations does not exercise: aliases, directives, inline fragments, __typename, introspection. */
const EXTRA: ReadonlyArray<{ source: string; variables: Record<string, unknown> }> = [
  {
    source: `query Shapes($s: [String!]!, $with: Boolean!, $level: Float!) {
      a: predictions(symbols: $s) { __typename id symbol ... on Prediction @include(if: $with) { quote { id close } } interval(level: $level) { id low } }
      b: predictions(symbols: $s, strategy: "direction-5d") { symbol signal model @skip(if: $with) { version } }
      one: prediction(symbol: "S02") { ...Q }
      symbols
    }
    fragment Q on Prediction { symbol hi: interval(level: 0.99) { high } lo: interval(level: 0.8) { low } }`,
    variables: { s: ['S01', 'S03', 'NOPE'], with: true, level: 0.9 },
  },
  { source: 'query Bad { prediction(symbol: "S01") { interval(level: 0.42) { low } } }', variables: {} },
  { source: getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, inputValueDeprecation: true }), variables: {} },
];

const PRINCIPALS: ReadonlyArray<Principal | undefined> = [
  { id: 'admin-1', name: 'admin', role: 'admin', via: 'apikey' } as Principal,
  { id: 'viewer-1', name: 'viewer', role: 'viewer', via: 'apikey' } as Principal,
  undefined,
];

interface Operation {
  readonly name: string;
  readonly document: DocumentNode;
  readonly kind: OperationDefinitionNode['operation'];
  readonly variables: ReadonlyArray<Record<string, unknown>>;
}

function operations(): Operation[] {
  const fromFiles = Object.entries(generated)
    .filter(([name]) => name.endsWith('Document'))
    .map(([, document]) => {
      // Parsed from text, as a request arrives (the generated documents carry no source).
      const parsed = parse(print(document as DocumentNode));
      const operation = parsed.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
      return { name: operation.name!.value, document: parsed, kind: operation.operation };
    });
  const extra = EXTRA.map(({ source, variables }) => {
    const document = parse(source);
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
    return { name: operation.name?.value ?? 'IntrospectionQuery', document, kind: operation.operation, variables: [variables] };
  });
  return [...fromFiles.map((o) => ({ ...o, variables: CASES[o.name] ?? [] })), ...extra];
}

/** The answer as a client sees it (formatted for production) and as errors.ts and the logs read it. */
function observed(result: ExecutionResult) {
  const errors = (result.errors ?? []).map((error: GraphQLError) =>
    JSON.stringify({
      // What Apollo's error formatting reads before errors.ts runs (it reads `extensions.code` unguarded).
      raw: { message: error.message, path: error.path, locations: error.locations, extensions: error.extensions },
      client: formatGraphQLError(error.toJSON(), true, error),
      development: formatGraphQLError(error.toJSON(), false, error),
      original: error.originalError ? `${error.originalError.constructor.name}: ${error.originalError.message}` : undefined,
    }),
  );
  // GraphQL does not order errors, and graphql-jit lists non-null violations last (compiled-execution.ts).
  return { keys: Object.keys(result), data: JSON.stringify(result.data), errors: errors.sort() };
}

describe(`compiled execution answers as graphql-js does, on every test operation (${stackName})`, () => {
  let server: TestGateway;
  let reference: OperationExecutor;
  let compiled: OperationExecutor;
  const outcomes: string[] = [];

  before(async () => {
    const market = createSyntheticMarket({ symbols: SYMBOLS, seed: 11, historyBars: 150, startTime: new Date('2024-03-01T00:00:00Z') });
    const bars = [...(await market.fetchBars(SYMBOLS, { lookback: 150 })).values()].flat().map((b) => ({ ...b, source: 'test-feed' }));
    // History is written only when flushed below, so no answer changes between the two engines' runs.
    server = await startTestGateway({ HISTORY_FLUSH_INTERVAL_MS: '60000', OUTCOMES_INTERVAL_MS: '0' }, { bars });
    const { schema } = server.gateway.graphql;
    const logger = createLogger({ level: 'silent', format: 'json' });
    reference = createOperationExecutor(schema, { jit: false, cacheSize: 1, logger });
    compiled = createOperationExecutor(schema, { jit: true, cacheSize: 100, logger, onCompile: (outcome) => outcomes.push(outcome) });
  });
  after(async () => server?.close());

  const run = (executor: OperationExecutor, operation: Operation, variables: Record<string, unknown>, principal: Principal | undefined) =>
    executor.execute({
      document: operation.document,
      operationName: operation.name === 'IntrospectionQuery' ? undefined : operation.name,
      variables,
      context: server.gateway.graphql.createContext({
        requestId: 'differential',
        logger: createLogger({ level: 'silent', format: 'json' }),
        transport: 'http',
        principal,
        clientAddress: '127.0.0.1',
      }),
    });

  test('every operation of test/operations has variables here (a new one must be added)', () => {
    const missing = operations().filter((o) => o.kind !== 'subscription' && o.variables.length === 0);
    assert.deepEqual(
      missing.map((o) => o.name),
      [],
    );
  });

  test('the same answers from graphql-js and from the compiled operations', async (t) => {
    const all = operations().filter((o) => o.kind !== 'subscription');
    // A first pass fills the caches and the history the second one reads; then history is written once.
    for (const operation of all) for (const variables of operation.variables) await run(reference, operation, variables, PRINCIPALS[0]);
    assert.equal(await server.gateway.history.flush(), true);

    let compared = 0;
    let withData = 0;
    for (const operation of all) {
      for (const variables of operation.variables) {
        for (const principal of PRINCIPALS) {
          const expected = observed(await run(reference, operation, variables, principal));
          const actual = observed(await run(compiled, operation, variables, principal));
          assert.deepEqual(actual, expected, `${operation.name} ${JSON.stringify(variables)} as ${principal?.role ?? 'anonymous'}`);
          compared++;
          if (expected.data !== undefined && expected.data !== 'null') withData++;
        }
      }
    }
    // Every operation was compiled (none fell back to graphql-js, which would compare graphql-js with itself).
    assert.deepEqual(
      outcomes.filter((o) => o !== 'compiled'),
      [],
    );
    assert.equal(outcomes.length, all.length);
    // And the comparison was not only of refusals: most cases answered with data.
    assert.ok(withData > compared / 3, `${withData} of ${compared} answers carried data`);
    t.diagnostic(`${compared} answers compared (${all.length} operations × variables × 3 roles), ${withData} with data`);
  });

  test('a subscription is not compiled (graphql-ws runs subscriptions with graphql-js)', async () => {
    const live = operations().find((o) => o.kind === 'subscription')!;
    const before = outcomes.length;
    await run(compiled, live, { symbols: ['S01'] }, PRINCIPALS[0]);
    assert.deepEqual(outcomes.slice(before), ['not_compiled']);
  });
});
