import 'reflect-metadata';
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parse, type GraphQLSchema } from 'graphql';
import { getMetadataStorage } from 'type-graphql';
import { bindSyncPredictionFields } from '../../../src/modules/predictions/index.js';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { NESTED_FIELDS, QUERY_FIELDS } from '../../../src/server/response-cache/field-inputs.js';
import { planOperation, type Plan } from '../../../src/server/response-cache/plan.js';
import { projectQueries, randomVariables, seededRandom } from '../../helpers/operations.js';

let schema: GraphQLSchema;
before(async () => {
  schema = await buildGatewaySchema();
});

const plan = (query: string, variables?: Record<string, unknown>, operationName?: string): Plan =>
  planOperation(schema, parse(query), operationName, variables);
const inputsOf = (result: Plan) => {
  assert.ok(result.cacheable, `expected cacheable, got ${JSON.stringify(result)}`);
  return result.inputs;
};

describe('the response cache field map', () => {
  test('every root Query field has an entry: a field added later is a decision to make there', () => {
    const fields = Object.keys(schema.getQueryType()!.getFields());
    const missing = fields.filter((name) => !Object.hasOwn(QUERY_FIELDS, name));
    assert.deepEqual(missing, [], `Query fields missing from QUERY_FIELDS (field-inputs.ts): ${missing.join(', ')}`);
  });

  test('every field with a resolver of its own below the root has an entry', () => {
    const storage = getMetadataStorage() as unknown as {
      fieldResolvers: Array<{ schemaName: string; getObjectType?: () => { name: string } }>;
      fields: Array<{ name: string; target: { name: string; prototype: object } }>;
      objectTypes: Array<{ name: string; target: { name: string } }>;
    };
    const resolved = storage.fieldResolvers.map((r) => `${r.getObjectType?.().name ?? '?'}.${r.schemaName}`);
    // Fields of object types declared on a method or getter compute something when they run.
    const typeNames = new Map(storage.objectTypes.map((t) => [t.target, t.name]));
    const computed = storage.fields
      .filter((f) => {
        const descriptor = Object.getOwnPropertyDescriptor(f.target.prototype, f.name);
        return descriptor !== undefined && (typeof descriptor.value === 'function' || descriptor.get !== undefined);
      })
      .map((f) => `${typeNames.get(f.target as never) ?? f.target.name}.${f.name}`);
    const bound: string[] = [];
    bindSyncPredictionFields((typeName, fieldName) => void bound.push(`${typeName}.${fieldName}`));
    const own = [...new Set([...resolved, ...computed, ...bound])].filter((name) => !name.startsWith('Subscription.'));
    assert.ok(own.includes('Prediction.history') && own.includes('Quote.id'), `found ${own.join(', ')}`);
    const missing = own.filter((name) => !Object.hasOwn(NESTED_FIELDS, name));
    assert.deepEqual(missing, [], `fields with their own resolver missing from NESTED_FIELDS (field-inputs.ts): ${missing.join(', ')}`);
  });
});

describe('planOperation', () => {
  test('predictions read each symbol and the strategy’s models; nested fields add what they read', () => {
    const query = `query W($symbols: [String!]!, $strategy: String) {
      predictions(symbols: $symbols, strategy: $strategy) { symbol probability quote { close id } interval(level: 0.9) { low } }
    }`;
    assert.deepEqual(inputsOf(plan(query, { symbols: ['AAPL', 'MSFT'] })), ['bars:AAPL', 'bars:MSFT', 'models:direction-1d']);
    assert.deepEqual(inputsOf(plan(query, { symbols: ['XOM'], strategy: 'direction-5d' })), ['bars:XOM', 'models:direction-5d']);
    const deeper = `query { prediction(symbol: "AAPL") { model { version active } history(last: 3) { time } explanation { summary } } }`;
    assert.deepEqual(inputsOf(plan(deeper)), ['bars:AAPL', 'history', 'models:*', 'models:direction-1d']);
  });

  test('inputs are found through fragments, inline fragments and aliases; a fragment spread many times is walked once', () => {
    const query = `
      query { a: prediction(symbol: "A") { ...P } b: predictions(symbols: ["B"]) { ...P ... on Prediction { ...P } } ... on Query { symbols } }
      fragment P on Prediction { symbol ...H }
      fragment H on Prediction { history { time } }`;
    assert.deepEqual(inputsOf(plan(query)), ['bars:*', 'bars:A', 'bars:B', 'history', 'models:direction-1d']);
  });

  test('live state, mutations, subscriptions, unknown fields and bad variables are not cacheable', () => {
    assert.deepEqual(plan('{ health { status } }'), { cacheable: false, reason: 'Query.health' });
    assert.equal(plan('{ apiKeys { id } symbols }').cacheable, false);
    assert.deepEqual(plan('mutation { rollbackModelVersion(strategy: "direction-1d") { name } }'), {
      cacheable: false,
      reason: 'mutation',
    });
    assert.equal(plan('subscription { signals(symbols: ["A"]) { symbol } }').cacheable, false);
    // A single value where a list is expected is a list of one, in the plan as in execution.
    assert.deepEqual(inputsOf(plan('query Q($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: 'AAPL' })), [
      'bars:AAPL',
      'models:direction-1d',
    ]);
    assert.equal(
      plan('query Q($s: [String!]!) { predictions(symbols: $s) { symbol } }', {}).cacheable,
      false,
      'a required variable missing',
    );
    assert.equal(plan('query A { symbols } query B { strategies { name } }').cacheable, false, 'two operations and no name');
    assert.deepEqual(inputsOf(plan('query A { symbols } query B { strategies { name } }', undefined, 'B')), ['models:*']);
  });

  test('introspection and __typename read nothing', () => {
    assert.deepEqual(inputsOf(plan('{ __typename __schema { types { name } } __type(name: "Query") { name } }')), []);
  });

  test('history, metrics, drift and backtest read what their resolvers read', () => {
    assert.deepEqual(inputsOf(plan('{ confidenceHistory(symbol: "A") { time } confidenceTrends(symbols: ["A"]) { mean } }')), ['history']);
    assert.deepEqual(inputsOf(plan('{ modelMetrics(strategy: "direction-5d") { brier } }')), ['history', 'models:direction-5d']);
    assert.deepEqual(
      inputsOf(plan('{ drift(strategy: "direction-1d", window: { from: "2020-01-01T00:00:00Z", to: "2020-06-01T00:00:00Z" }) { days } }')),
      ['bars:*', 'history', 'models:direction-1d'],
    );
    assert.deepEqual(
      inputsOf(
        plan(
          '{ backtest(strategy: "direction-1d", symbols: ["A", "B"], from: "2020-01-01T00:00:00Z", to: "2020-06-01T00:00:00Z") { predictions } }',
        ),
      ),
      ['bars:A', 'bars:B', 'models:direction-1d'],
    );
  });

  test('every query of test/operations and of the web app is cacheable with any variables, except `health` and promotion decisions', () => {
    const random = seededRandom(7);
    const choices = {
      symbols: ['AAPL', 'MSFT'],
      strategies: ['direction-1d', 'direction-5d'],
      versions: ['v1'],
      past: [new Date(0), new Date(1e12)],
    };
    const queries = projectQueries();
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    for (const query of queries) {
      for (let i = 0; i < 5; i++) {
        const result = planOperation(schema, parse(query.query), query.name, randomVariables(query, random, choices));
        if (query.name === 'Health') assert.deepEqual(result, { cacheable: false, reason: 'Query.health' });
        else if (/\bpromotions\b/.test(query.query)) assert.deepEqual(result, { cacheable: false, reason: 'Strategy.promotions' });
        else assert.ok(result.cacheable && result.inputs.length > 0, `${query.name} (${query.source}): ${JSON.stringify(result)}`);
      }
    }
  });
});
