import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphQLError, Kind, buildSchema, execute, parse, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { createOperationExecutor, type ExecutionRequest } from '../../../src/server/compiled-execution.js';
import { codedError, ErrorCode } from '../../../src/shared/errors.js';

const logger = createLogger({ level: 'silent', format: 'json' });

/**
 * A schema with every way a field can fail: a coded GraphQLError thrown, a plain Error thrown, an
 * Error returned as a list item (DataLoader.loadMany's way), a null for a non-null field (bubbling to
 * the nearest nullable parent), and a promise that rejects.
 */
function fixture(): { schema: GraphQLSchema; calls: Map<string, number> } {
  const schema = buildSchema(`
    type Item { id: ID!, name: String!, price: Float, broken: String!, tags(prefix: String = "t"): [String!]! }
    type Query {
      items(ids: [ID!]!): [Item]!
      coded: String
      plain: String
      slow: Int
      rejected: String
      when(at: String!): String
    }
    type Mutation { bump(by: Int!): Int! }
    type Subscription { ticks: Int }
  `);
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const query = schema.getQueryType()!.getFields();
  query.items!.resolve = (_root, { ids }: { ids: string[] }) => {
    count('items');
    return ids.map((id) => (id === 'missing' ? codedError(ErrorCode.UNKNOWN_SYMBOL, `no ${id}`, { id }) : { id, name: `n${id}` }));
  };
  query.coded!.resolve = () => {
    throw codedError(ErrorCode.BAD_USER_INPUT, 'coded refusal', { limit: 3 });
  };
  query.plain!.resolve = () => {
    throw new Error('plain failure');
  };
  query.slow!.resolve = async () => 42;
  query.rejected!.resolve = async () => Promise.reject(new Error('rejected later'));
  query.when!.resolve = (_root, { at }: { at: string }) => at;
  const item = (schema.getType('Item') as ReturnType<GraphQLSchema['getQueryType']> & object).getFields();
  item.broken!.resolve = (source: { id: string }) => (source.id === 'b' ? null : 'ok');
  item.price!.resolve = (source: { id: string }) => (source.id === 'p' ? Number.NaN : 1.5);
  item.tags!.resolve = (source: { id: string }, { prefix }: { prefix: string }) => {
    count('tags');
    return [`${prefix}${source.id}`];
  };
  let total = 0;
  schema.getMutationType()!.getFields().bump!.resolve = (_root, { by }: { by: number }) => (total += by);
  return { schema, calls };
}

/**
 * What a client, Apollo's formatting and errors.ts read of an answer: its data as JSON, and per error
 * its JSON, extensions and what was thrown. Errors are compared in response order (sorted by path):
 * graphql-jit lists non-null violations after the other errors, and GraphQL does not order them.
 */
function observed(result: ExecutionResult) {
  const errors = (result.errors ?? []).map((e) => ({
    json: JSON.stringify(e),
    graphqlError: e instanceof GraphQLError,
    extensions: e.extensions,
    original: e.originalError?.message,
    originalCode: (e.originalError as GraphQLError | undefined)?.extensions?.code,
  }));
  return {
    keys: Object.keys(result),
    data: JSON.stringify(result.data),
    errors: errors.sort((a, b) => (a.json < b.json ? -1 : a.json > b.json ? 1 : 0)),
  };
}

/** The same operation run by graphql-js and by the compiled executor, each on a fixture of its own. */
async function both(query: string, variables?: Record<string, unknown>, operationName?: string) {
  const compiled: string[] = [];
  const jit = createOperationExecutor(fixture().schema, { jit: true, cacheSize: 10, logger, onCompile: (r) => compiled.push(r) });
  const request: ExecutionRequest = { document: parse(query), operationName, variables, context: {} };
  const reference = await execute({
    schema: fixture().schema,
    document: parse(query),
    variableValues: variables,
    operationName,
    contextValue: {},
  });
  const answer = await jit.execute(request);
  return { reference, answer, compiled };
}

describe('compiled execution (graphql-jit) answers as graphql-js does', () => {
  const cases: Array<[string, string, Record<string, unknown>?]> = [
    [
      'a list with an Error item, a non-null violation bubbling and a non-finite Float',
      '{ items(ids: ["a", "missing", "b", "p"]) { id name broken price } }',
    ],
    ['a coded GraphQLError thrown by a resolver', '{ coded }'],
    ['a plain Error thrown by a resolver', '{ plain plain2: plain }'],
    ['async values and a rejected promise', '{ slow rejected }'],
    [
      'arguments with defaults, from variables and literals, aliases, __typename',
      'query Q($p: String) { items(ids: ["a"]) { __typename one: tags two: tags(prefix: $p) three: tags(prefix: "x") } }',
      { p: 'v' },
    ],
    [
      '@include and @skip from variables, inline fragments and fragment spreads',
      'query Q($yes: Boolean!) { items(ids: ["a"]) { ...F ... on Item @skip(if: $yes) { name } } } fragment F on Item { id @include(if: $yes) name }',
      { yes: true },
    ],
    ['variables that do not fit their types', 'query Q($ids: [ID!]!) { items(ids: $ids) { id } }', { ids: [{ no: 1 }] }],
    ['a missing required variable', 'query Q($at: String!) { when(at: $at) }', {}],
    ['a null for a non-null variable', 'query Q($at: String!) { when(at: $at) }', { at: null }],
    ['a mutation', 'mutation M($by: Int!) { first: bump(by: $by) second: bump(by: $by) }', { by: 2 }],
  ];
  for (const [name, query, variables] of cases) {
    test(name, async () => {
      const { reference, answer, compiled } = await both(query, variables);
      assert.deepEqual(compiled, ['compiled']);
      assert.deepEqual(observed(answer), observed(reference));
    });
  }

  test('a variable that does not fit is refused with graphql-js’s error, located at its definition (Apollo codes it BAD_USER_INPUT)', async () => {
    const { answer } = await both('query Q($at: String!) { when(at: $at) }', { at: 5 });
    assert.equal('data' in answer, false);
    assert.equal(answer.errors?.[0]?.nodes?.[0]?.kind, Kind.VARIABLE_DEFINITION);
    assert.equal(answer.errors![0]!.message, 'Variable "$at" got invalid value 5; String cannot represent a non string value: 5');
  });

  test('resolvers run once per field and item, as with graphql-js', async () => {
    const { schema, calls } = fixture();
    const jit = createOperationExecutor(schema, { jit: true, cacheSize: 10, logger });
    await jit.execute({
      document: parse('{ items(ids: ["a", "b", "c"]) { tags } }'),
      operationName: undefined,
      variables: {},
      context: {},
    });
    assert.deepEqual(Object.fromEntries(calls), { items: 1, tags: 3 });
  });
});

describe('compiled operations are cached per document and operation name', () => {
  test('compiled once per document text and operation name, whichever parse of it arrives', async () => {
    const compiled: string[] = [];
    const jit = createOperationExecutor(fixture().schema, { jit: true, cacheSize: 10, logger, onCompile: (r) => compiled.push(r) });
    const text = 'query A { slow } query B { coded }';
    const run = (operationName: string) => jit.execute({ document: parse(text), operationName, variables: {}, context: {} });
    assert.deepEqual(await run('A'), { data: { slow: 42 } });
    await run('A');
    await run('B');
    await run('B');
    assert.deepEqual(compiled, ['compiled', 'compiled']);
  });

  test('the cache holds at most cacheSize operations, least recently used dropped first', async () => {
    const compiled: string[] = [];
    const jit = createOperationExecutor(fixture().schema, { jit: true, cacheSize: 2, logger, onCompile: (r) => compiled.push(r) });
    const run = (query: string) => jit.execute({ document: parse(query), operationName: undefined, variables: {}, context: {} });
    await run('{ slow }');
    await run('{ coded }');
    await run('{ slow }'); // cached; now the most recently used
    await run('{ plain }'); // drops `{ coded }`
    await run('{ slow }'); // still cached
    assert.equal(compiled.length, 3);
    await run('{ coded }'); // compiled again
    assert.equal(compiled.length, 4);
  });
});

describe('what graphql-jit does not compile runs with graphql-js', () => {
  test('an operation graphql-jit refuses to compile (an unknown operation name) gets graphql-js’s answer, and is not retried', async () => {
    const { reference, answer, compiled } = await both('query A { slow }', {}, 'Missing');
    assert.deepEqual(compiled, ['not_compiled']);
    assert.deepEqual(observed(answer), observed(reference));
    assert.match(answer.errors![0]!.message, /Unknown operation named "Missing"/);
  });

  test('a subscription is never compiled', async () => {
    const compiled: string[] = [];
    const jit = createOperationExecutor(fixture().schema, { jit: true, cacheSize: 10, logger, onCompile: (r) => compiled.push(r) });
    const request = { document: parse('subscription { ticks }'), operationName: undefined, variables: {}, context: {} };
    const reference = await execute({ schema: fixture().schema, document: request.document });
    assert.deepEqual(observed(await jit.execute(request)), observed(reference));
    assert.deepEqual(compiled, ['not_compiled']);
  });

  test('GRAPHQL_JIT=off: graphql-js runs everything and nothing is compiled', async () => {
    const compiled: string[] = [];
    const executor = createOperationExecutor(fixture().schema, { jit: false, cacheSize: 10, logger, onCompile: (r) => compiled.push(r) });
    assert.equal(executor.engine, 'graphql-js');
    const answer = await executor.execute({ document: parse('{ slow }'), operationName: undefined, variables: {}, context: {} });
    assert.equal(JSON.stringify(answer), '{"data":{"slow":42}}');
    assert.deepEqual(compiled, []);
  });
});
