import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse, validate, type ValidationRule } from 'graphql';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { formatGraphQLError } from '../../../src/server/errors.js';
import { failClosed, limitRules, operationCost } from '../../../src/server/limits.js';

describe('operation cost', () => {
  test('1 per field; the number of symbols multiplies the predictions subtree, literal or variable', async () => {
    const schema = await buildGatewaySchema();
    const cost = (query: string, variables?: Record<string, unknown>) =>
      operationCost(schema, parse(query), undefined, variables, 1_000).cost;
    assert.equal(cost('{ health { status } }'), 2);
    const fields = '{ symbol signal quote { close } }'; // 1 + 1 + (1 + 1) = 4, plus the field itself
    assert.equal(cost(`{ predictions(symbols: ["AAPL"]) ${fields} }`), 5);
    assert.equal(cost(`{ predictions(symbols: ["AAPL", "MSFT", "NVDA"]) ${fields} }`), 15);
    assert.equal(
      cost(`query($s: [String!]!) { predictions(symbols: $s) ${fields} }`, { s: Array.from({ length: 1_000 }, () => 'AAPL') }),
      5_000,
    );
    // Variables that do not fit are refused here, never costed as a guess.
    assert.throws(
      () => cost('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: [{ not: 'a string' }] }),
      (error: { extensions: { code: string } }) => error.extensions.code === 'BAD_USER_INPUT',
    );
    assert.throws(
      () => cost('query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: Array.from({ length: 1_001 }, () => 'AAPL') }),
      (error: { extensions: { code: string; limit: number } }) =>
        error.extensions.code === 'BAD_USER_INPUT' && error.extensions.limit === 1_000,
    );
  });
});

describe('limit errors', () => {
  test('the token limit and validation-time limits get QUERY_TOO_COMPLEX with the limit named', () => {
    const tokens = formatGraphQLError(
      { message: 'Syntax Error: Document contains more that 2000 tokens. Parsing aborted.', extensions: { code: 'GRAPHQL_PARSE_FAILED' } },
      true,
    );
    assert.deepEqual(tokens.extensions, { code: 'QUERY_TOO_COMPLEX', limit: 'tokens', max: 2000 });
    const depth = formatGraphQLError(
      {
        message: 'Query depth limit of 10 exceeded, found 20.',
        extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'depth', max: 10 },
      },
      true,
    );
    assert.equal(depth.extensions?.code, 'QUERY_TOO_COMPLEX');
  });

  test('field suggestions are dropped in production, on every transport', () => {
    const error = {
      message: 'Cannot query field "healt" on type "Query". Did you mean "health"?',
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    };
    assert.equal(formatGraphQLError(error, true).message, 'Cannot query field "healt" on type "Query".');
    assert.match(formatGraphQLError(error, false).message, /Did you mean/);
  });
});

describe('limit rules fail closed', () => {
  test('a rule that throws refuses the operation with QUERY_TOO_COMPLEX instead of failing validation itself', async () => {
    const schema = await buildGatewaySchema();
    const broken: ValidationRule = () => ({
      OperationDefinition: {
        enter() {
          throw new TypeError('a bug in the rule');
        },
      },
    });
    assert.throws(() => validate(schema, parse('{ health { status } }'), [broken]), TypeError);
    const errors = validate(schema, parse('{ health { status } }'), [failClosed(broken, 'depth')]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.extensions.code, 'QUERY_TOO_COMPLEX');
    assert.equal(errors[0]?.extensions.limit, 'depth');
    // A rule that works is unchanged by the wrapper.
    assert.deepEqual(
      validate(schema, parse('{ a: health { status } b: health { status } }'), limitRules({ maxDepth: 10, maxAliases: 1 })).map(
        (e) => e.extensions.limit,
      ),
      ['aliases'],
    );
    assert.deepEqual(validate(schema, parse('{ a: health { status } }'), limitRules({ maxDepth: 10, maxAliases: 1 })), []);
  });
});
