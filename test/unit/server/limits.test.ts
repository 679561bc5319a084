import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'graphql';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { formatGraphQLError } from '../../../src/server/errors.js';
import { operationCost } from '../../../src/server/limits.js';

describe('operation cost', () => {
  test('1 per field; the number of symbols multiplies the predictions subtree, literal or variable', async () => {
    const schema = await buildGatewaySchema();
    const cost = (query: string, variables?: Record<string, unknown>) => operationCost(schema, parse(query), undefined, variables, 1_000).cost;
    assert.equal(cost('{ health { status } }'), 2);
    const fields = '{ symbol signal quote { close } }'; // 1 + 1 + (1 + 1) = 4, plus the field itself
    assert.equal(cost(`{ predictions(symbols: ["AAPL"]) ${fields} }`), 5);
    assert.equal(cost(`{ predictions(symbols: ["AAPL", "MSFT", "NVDA"]) ${fields} }`), 15);
    assert.equal(cost(`query($s: [String!]!) { predictions(symbols: $s) ${fields} }`, { s: Array.from({ length: 1_000 }, () => 'AAPL') }), 5_000);
    // Variables that do not fit are refused here, never costed as a guess.
    assert.throws(
      () => cost('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: [{ not: 'a string' }] }),
      (error: { extensions: { code: string } }) => error.extensions.code === 'BAD_USER_INPUT',
    );
    assert.throws(
      () => cost('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: Array.from({ length: 1_001 }, () => 'AAPL') }),
      (error: { extensions: { code: string; limit: number } }) => error.extensions.code === 'BAD_USER_INPUT' && error.extensions.limit === 1_000,
    );
  });
});

describe('limit errors', () => {
  test('the token limit and validation-time limits get QUERY_TOO_COMPLEX with the limit named', () => {
    const tokens = formatGraphQLError({ message: 'Syntax Error: Document contains more that 2000 tokens. Parsing aborted.', extensions: { code: 'GRAPHQL_PARSE_FAILED' } }, true);
    assert.deepEqual(tokens.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'tokens', max: 2000 });
    const depth = formatGraphQLError({ message: 'Query depth limit of 10 exceeded, found 20.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'depth', max: 10 } }, true);
    assert.equal(depth.extensions?.code, 'QUERY_TOO_COMPLEX');
  });

  test('field suggestions are dropped in production, on every transport', () => {
    const error = { message: 'Cannot query field "healt" on type "Query". Did you mean "health"?', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } };
    assert.equal(formatGraphQLError(error, true).message, 'Cannot query field "healt" on type "Query".');
    assert.match(formatGraphQLError(error, false).message, /Did you mean/);
  });
});
