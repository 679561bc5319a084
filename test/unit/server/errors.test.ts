import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GraphQLError, parse, type OperationDefinitionNode } from 'graphql';
import { errorCodes, formatGraphQLError } from '../../../src/server/errors.js';
import { isDependencyOutage } from '../../../src/shared/errors.js';

describe('formatGraphQLError', () => {
  const internal = {
    message: 'relation "secret_table" does not exist at /srv/app/x.ts',
    path: ['health'],
    extensions: { stacktrace: ['at /srv/app/x.ts:1'] },
  };

  test('masks internal errors in production: no message, stack or path text', () => {
    const formatted = formatGraphQLError(internal, true);
    assert.equal(formatted.message, 'Internal server error');
    assert.deepEqual(formatted.extensions, { code: 'INTERNAL_SERVER_ERROR' });
    assert.deepEqual(formatted.path, ['health']);
    assert.doesNotMatch(JSON.stringify(formatted), /secret_table|\/srv\/app/);
  });

  test('outside production internal errors keep their message and get a code', () => {
    const formatted = formatGraphQLError(internal, false);
    assert.equal(formatted.message, internal.message);
    assert.equal(formatted.extensions?.code, 'INTERNAL_SERVER_ERROR');
  });

  test('client errors keep their message and code, never a stack', () => {
    const formatted = formatGraphQLError(
      { message: 'Unknown symbol "ZZZZ"', extensions: { code: 'UNKNOWN_SYMBOL', stacktrace: ['x'] } },
      true,
    );
    assert.equal(formatted.message, 'Unknown symbol "ZZZZ"');
    assert.deepEqual(formatted.extensions, { code: 'UNKNOWN_SYMBOL' });
  });

  test("Apollo's uncoded 4xx refusals (persisted-query hash or version) are BAD_REQUEST; uncoded errors without a 4xx stay internal", () => {
    // As Apollo hands them to formatError: its own default code, `http` removed, the original error beside.
    const apollo = (original: GraphQLError) =>
      formatGraphQLError({ message: original.message, extensions: { code: 'INTERNAL_SERVER_ERROR' } }, true, original);
    const mismatch = apollo(new GraphQLError('provided sha does not match query', { extensions: { http: { status: 400 } } }));
    assert.deepEqual(mismatch, { message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } });
    assert.equal(apollo(new GraphQLError('boom', { extensions: { http: { status: 500 } } })).extensions?.code, 'INTERNAL_SERVER_ERROR');
    assert.equal(apollo(new GraphQLError('boom')).extensions?.code, 'INTERNAL_SERVER_ERROR');
    // A resolver's failure that happens to carry a status is still ours.
    assert.equal(
      apollo(new GraphQLError('boom', { originalError: new Error('x'), extensions: { http: { status: 400 } } })).extensions?.code,
      'INTERNAL_SERVER_ERROR',
    );
  });

  test('variables that do not fit their types (an uncoded error at a variable definition) are BAD_USER_INPUT', () => {
    const definition = parse('query($s: [String!]!) { predictions(symbols: $s) { symbol } }').definitions[0] as OperationDefinitionNode;
    const node = definition.variableDefinitions![0]!;
    const coercion = new GraphQLError('Variable "$s" got invalid value 5; String cannot represent a non string value: 5', {
      nodes: [node],
    });
    assert.equal(formatGraphQLError(coercion.toJSON(), true, coercion).extensions?.code, 'BAD_USER_INPUT');
    // Anything else located elsewhere, or already coded, keeps its own classification.
    const resolver = new GraphQLError('boom', { nodes: [definition], path: ['predictions'] });
    assert.equal(formatGraphQLError(resolver.toJSON(), true, resolver).extensions?.code, 'INTERNAL_SERVER_ERROR');
    const coded = new GraphQLError('x', { nodes: [node], extensions: { code: 'UNKNOWN_SYMBOL' } });
    assert.equal(formatGraphQLError(coded.toJSON(), true, coded).extensions?.code, 'UNKNOWN_SYMBOL');
  });

  test("type-graphql's validation errors name the argument and the rule", () => {
    const formatted = formatGraphQLError(
      {
        message: 'Argument Validation Error',
        extensions: {
          code: 'BAD_USER_INPUT',
          validationErrors: [
            { property: 'symbols', value: ['!!'], constraints: { matches: 'each value in symbols must match /^[A-Z]+$/' } },
          ],
        },
      },
      true,
    );
    assert.equal(formatted.message, 'Invalid arguments: symbols: each value in symbols must match /^[A-Z]+$/');
    assert.deepEqual(formatted.extensions?.validationErrors, [
      { argument: 'symbols', problems: ['each value in symbols must match /^[A-Z]+$/'] },
    ]);
  });

  test("type-graphql's UNAUTHORIZED becomes FORBIDDEN", () => {
    assert.equal(formatGraphQLError({ message: 'no', extensions: { code: 'UNAUTHORIZED' } }, true).extensions?.code, 'FORBIDDEN');
  });

  test('errorCodes lists one code per error', () => {
    assert.deepEqual(errorCodes([{ message: 'a', extensions: { code: 'X' } }, { message: 'b' }]), ['X', 'INTERNAL_SERVER_ERROR']);
    assert.deepEqual(errorCodes(undefined), []);
  });

  test('an uncoded error caused by an unreachable dependency is UNAVAILABLE, with nothing of the cause shown', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const wrapped = new GraphQLError(refused.message, { originalError: refused, path: ['confidenceHistory'] });
    for (const production of [true, false]) {
      const out = formatGraphQLError(wrapped.toJSON(), production, wrapped);
      assert.equal(out.extensions?.code, 'UNAVAILABLE');
      assert.doesNotMatch(out.message, /ECONNREFUSED|5432/);
      assert.deepEqual(out.path, ['confidenceHistory']);
    }
    // A coded client error keeps its code, and a plain bug stays internal.
    const bug = new GraphQLError('x is undefined', { originalError: new TypeError('x is undefined') });
    assert.equal(formatGraphQLError(bug.toJSON(), true, bug).extensions?.code, 'INTERNAL_SERVER_ERROR');
  });

  test('isDependencyOutage: network codes, PostgreSQL connection states, pg messages, causes and aggregates', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const e of [
      coded('ECONNREFUSED'),
      coded('ETIMEDOUT'),
      coded('08006'),
      coded('57P01'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('wrapped', { cause: coded('ECONNRESET') }),
      new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'connect failed'),
    ]) {
      assert.equal(isDependencyOutage(e), true, String(e));
    }
    for (const e of [new TypeError('x is undefined'), coded('23505'), coded('42P01'), 'ECONNREFUSED', undefined, null]) {
      assert.equal(isDependencyOutage(e), false, String(e));
    }
  });
});
