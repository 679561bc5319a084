import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildSchema, execute, parse, validate, type ExecutionResult } from 'graphql';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { measureOperation } from '../../../src/server/cost.js';
import { operationCost } from '../../../src/server/limits.js';

/** A recursive schema, so fragments can expand exponentially through nesting and aliases. */
const nodeSchema = buildSchema(`
  type Query { node: Node }
  type Node { id: ID! child: Node children(first: Int!): [Node!]! }
`);
const rootValue = { node: () => ({}) };
const fieldResolver = (_source: unknown, args: { first?: number }, _context: unknown, info: { fieldName: string }) => {
  if (info.fieldName === 'id') return 'x';
  if (info.fieldName === 'child') return {};
  if (info.fieldName === 'children') return Array.from({ length: args.first ?? 0 }, () => ({}));
  return undefined;
};

/** Every field of a response, list items' fields each: the work execution did to build it. */
function fieldsIn(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + fieldsIn(item), 0);
  if (typeof value !== 'object' || value === null) return 0;
  return Object.values(value).reduce((sum: number, child) => sum + 1 + fieldsIn(child), 0);
}

const codeOf = (error: unknown) => (error as { extensions?: { code?: unknown } }).extensions?.code;

describe('operation cost after fragment expansion', () => {
  test('the attack of issue 17: a fragment on Query spread 30 times, spreading another 30 times, is measured at once and costs what it returns', async () => {
    const schema = await buildGatewaySchema();
    const spreads = (name: string) => Array.from({ length: 30 }, () => `...${name}`).join(' ');
    const query = `query Q { ...A } fragment A on Query { ${spreads('B')} } fragment B on Query { ${spreads('C')} } fragment C on Query { __typename }`;
    const started = performance.now();
    const size = measureOperation(schema, parse(query), 'Q', {}, 200);
    assert.ok(performance.now() - started < 100, 'linear in the document, not in the expansion');
    // graphql-js collects a fragment once per selection set: the response is { __typename }.
    assert.deepEqual(size, { cost: 1, nodes: 1 });

    // Distinct fragments, each spread once: 30 × 30 aliased leaves really are 900 fields.
    const inner = Array.from({ length: 30 }, (_, j) => `fragment C${j} on Query { c${j}: __typename }`).join(' ');
    const middle = Array.from(
      { length: 30 },
      (_, i) => `fragment B${i} on Query { ${Array.from({ length: 30 }, (_, j) => `...C${j}`).join(' ')} }`,
    ).join(' ');
    const distinct = `query Q { ...A } fragment A on Query { ${Array.from({ length: 30 }, (_, i) => `...B${i}`).join(' ')} } ${middle} ${inner}`;
    const measured = measureOperation(schema, parse(distinct), 'Q', {}, 200);
    assert.equal(measured.nodes, 900, 'every expansion counted (execution merges them into 30 keys: an upper bound)');
  });

  test('aliases doubling through 20 levels of fragments: 2^21 fields, measured in milliseconds', () => {
    const levels = 20;
    const fragments = Array.from({ length: levels }, (_, i) =>
      i === levels - 1 ? `fragment F${i} on Node { id }` : `fragment F${i} on Node { a: child { ...F${i + 1} } b: child { ...F${i + 1} } }`,
    ).join(' ');
    const started = performance.now();
    const size = measureOperation(nodeSchema, parse(`{ node { ...F0 } } ${fragments}`), undefined, {}, 200);
    assert.ok(performance.now() - started < 100);
    // node + (2 + 2·(2 + …)) : 2^levels − 2 child fields, 2^(levels−1) ids, and `node`.
    assert.equal(size.nodes, 1 + (2 ** levels - 2) + 2 ** (levels - 1));
    assert.equal(size.cost, size.nodes);
  });

  test('list sizes multiply (defaults included); inline fragments and repeated spreads count as graphql-js collects them', async () => {
    const schema = await buildGatewaySchema();
    const cost = (query: string, variables: Record<string, unknown> = {}) => operationCost(schema, parse(query), undefined, variables, 200);
    // history(last: Int = 20): the default is a list size too.
    assert.equal(cost('{ prediction(symbol: "AAPL") { history { time } } }').cost, 1 + 20 * 2);
    assert.equal(cost('{ prediction(symbol: "AAPL") { history(last: 5) { time } } }').cost, 1 + 5 * 2);
    assert.equal(
      cost(
        'query($s: [String!]!) { predictions(symbols: $s) { ...P ...P ... on Prediction { signal } } } fragment P on Prediction { symbol }',
        { s: ['A', 'B'] },
      ).cost,
      2 * (1 + 2),
    );
  });

  test('refusal, never a crash or a guess: cycles, unknown fragments, nesting past the walk bound, bad variables, lists over the limit', async () => {
    const schema = await buildGatewaySchema();
    const refused = (query: string, variables: Record<string, unknown> = {}, code = 'QUERY_TOO_COMPLEX') =>
      assert.throws(
        () => operationCost(schema, parse(query), undefined, variables, 200),
        (error) => codeOf(error) === code,
        query.slice(0, 80),
      );
    // Documents validation would refuse, reaching the measure anyway.
    refused('{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }');
    refused('{ ...Missing }');
    assert.throws(
      () => measureOperation(nodeSchema, parse(`{ node { ${'child { '.repeat(500)}id${' }'.repeat(500)} } }`), undefined, {}, 200),
      (e) => codeOf(e) === 'QUERY_TOO_COMPLEX',
    );
    refused('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: 42 }, 'BAD_USER_INPUT');
    refused('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', {}, 'BAD_USER_INPUT');
    refused(
      'query($s: [String!]!) { predictions(symbols: $s) { symbol } }',
      { s: Array.from({ length: 201 }, () => 'A') },
      'BAD_USER_INPUT',
    );
    refused('query A { health { status } } query B { health { status } }', {}, 'BAD_USER_INPUT');
  });

  test('property: for any fragment graph, the measured cost is at least the fields execution returns, and measuring never throws uncoded', () => {
    // Fragment i may use fragments j > i only (validation refuses cycles before the measure runs).
    const selection = (i: number, count: number) => {
      const later = fc.integer({ min: i + 1, max: Math.max(i + 1, count - 1) });
      const options = [fc.constant('id'), fc.integer({ min: 0, max: 3 }).map((n) => `k${n}: id`)];
      if (i + 1 < count) {
        options.push(
          later.map((j) => `...F${j}`),
          later.map((j) => `child { ...F${j} }`),
          fc.tuple(fc.integer({ min: 0, max: 3 }), later).map(([a, j]) => `c${a}: child { ...F${j} }`),
          fc.tuple(fc.integer({ min: 0, max: 3 }), later).map(([n, j]) => `children(first: ${n}) { ...F${j} }`),
          later.map((j) => `... on Node { ...F${j} id }`),
        );
      }
      return fc.oneof(...options);
    };
    const graph = fc
      .integer({ min: 1, max: 6 })
      .chain((count) =>
        fc.tuple(...Array.from({ length: count }, (_, i) => fc.array(selection(i, count), { minLength: 1, maxLength: 5 }))),
      );
    let executed = 0;
    fc.assert(
      fc.property(graph, (bodies) => {
        const source = `{ node { ...F0 } } ${bodies.map((body, i) => `fragment F${i} on Node { ${body.join(' ')} }`).join(' ')}`;
        const document = parse(source);
        const errors = validate(nodeSchema, document);
        if (errors.length > 0) return; // e.g. a fragment nobody spreads; not what this property is about
        const size = measureOperation(nodeSchema, document, undefined, {}, 200);
        assert.ok(size.cost >= size.nodes);
        // What the limits would admit is executed and counted; beyond that, measuring is the claim.
        if (size.cost > 20_000) return;
        const result = execute({ schema: nodeSchema, document, rootValue, fieldResolver }) as ExecutionResult;
        assert.equal(result.errors, undefined);
        executed++;
        const fields = fieldsIn(result.data);
        assert.ok(size.cost >= fields, `cost ${size.cost} < ${fields} fields returned by ${source}`);
      }),
      { numRuns: 300, seed: 17 },
    );
    assert.ok(executed > 100, `most generated operations are executed and compared (${executed})`);
  });
});

describe('drift: a fixed cost for its work', () => {
  test('costs 500 plus its selection, whether or not it names symbols, and its symbols still obey the list limit', async () => {
    const schema = await buildGatewaySchema();
    const window = '{ from: "2020-01-01T00:00:00Z", to: "2020-12-31T00:00:00Z" }';
    const plain = measureOperation(
      schema,
      parse(`{ drift(strategy: "direction-1d", window: ${window}) { samples features { name psi } } }`),
      undefined,
      {},
      200,
    );
    assert.deepEqual(plain, { cost: 500 + 1 + 1 + 1 + 2, nodes: 5 });
    const symbols = Array.from({ length: 50 }, (_, i) => `"S${i}"`).join(', ');
    const named = measureOperation(
      schema,
      parse(`{ drift(strategy: "direction-1d", window: ${window}, symbols: [${symbols}]) { samples features { name psi } } }`),
      undefined,
      {},
      200,
    );
    assert.deepEqual(named, plain, 'the symbols size the work, not the answer');
    assert.throws(
      () =>
        measureOperation(
          schema,
          parse(`{ drift(strategy: "direction-1d", window: ${window}, symbols: [${symbols}]) { samples } }`),
          undefined,
          {},
          10,
        ),
      (error: unknown) => codeOf(error) === 'BAD_USER_INPUT',
    );
    // Twice in one operation: twice the work.
    const twice = measureOperation(
      schema,
      parse(
        `{ a: drift(strategy: "direction-1d", window: ${window}) { samples } b: drift(strategy: "direction-5d", window: ${window}) { samples } }`,
      ),
      undefined,
      {},
      200,
    );
    assert.equal(twice.cost, 2 * (500 + 1 + 1));
  });
});

describe('backtest: its symbols size the work, not the answer', () => {
  test('costs 40 per symbol plus its selection once: the web page’s whole query for 100 symbols fits the default 5,000, two do not', async () => {
    const schema = await buildGatewaySchema();
    const page = readFileSync(new URL('../../../web/operations/backtest.graphql', import.meta.url), 'utf8');
    const variables = (n: number) => ({
      strategy: 'direction-1d',
      symbols: Array.from({ length: n }, (_, i) => `S${i}`),
      from: '2019-01-01T00:00:00Z',
      to: '2019-12-31T00:00:00Z',
    });
    const one = measureOperation(schema, parse(page), 'BacktestRun', variables(1), 200);
    const hundred = measureOperation(schema, parse(page), 'BacktestRun', variables(100), 200);
    assert.equal(hundred.cost - one.cost, 99 * 40, 'only the work grows with the symbols');
    assert.equal(hundred.nodes, one.nodes);
    assert.ok(hundred.cost <= 5_000, `the page's query for 100 symbols costs ${hundred.cost}`);
    assert.ok(one.cost > 40 + 50, `the selection (${one.cost - 40}) is counted once`);
    const symbols = variables(100)
      .symbols.map((s) => `"${s}"`)
      .join(', ');
    const field = (alias: string) =>
      `${alias}: backtest(strategy: "direction-1d", symbols: [${symbols}], from: "2019-01-01T00:00:00Z", to: "2019-12-31T00:00:00Z") { days: predictions }`;
    const twice = measureOperation(schema, parse(`{ ${field('a')} ${field('b')} }`), undefined, {}, 200);
    assert.equal(twice.cost, 2 * (4_000 + 1 + 1));
    assert.throws(
      () => measureOperation(schema, parse(page), 'BacktestRun', variables(11), 10),
      (error: unknown) => codeOf(error) === 'BAD_USER_INPUT',
      'its symbols still obey the list limit',
    );
  });
});
