import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { operationOf, statementOf } from '../../../src/infra/db/tracing.js';

describe('what a sql.query span records of a statement', () => {
  test('the operation is the first keyword, upper-cased', () => {
    assert.equal(operationOf('select "id" from "api_keys" where "key_hash" = $1'), 'SELECT');
    assert.equal(operationOf('  \n insert into t values ($1)'), 'INSERT');
    assert.equal(operationOf('(select 1) union (select 2)'), 'SELECT');
    assert.equal(operationOf('with x as (select 1) select * from x'), 'WITH');
    assert.equal(operationOf('begin'), 'BEGIN');
    assert.equal(operationOf(''), 'UNKNOWN');
  });

  test('parameters stay placeholders; inlined literals are replaced; whitespace collapsed; long text cut', () => {
    assert.equal(statementOf('select *\n  from t\n  where a = $1'), 'select * from t where a = $1');
    assert.equal(
      statementOf("select * from t where name = 'O''Brien' and role = 'admin' and n = $1"),
      "select * from t where name = '?' and role = '?' and n = $1",
    );
    const long = statementOf(`insert into t values ${Array.from({ length: 1_000 }, (_, i) => `($${i + 1})`).join(', ')}`);
    assert.equal(long.length, 1_001);
    assert.ok(long.endsWith('…'));
  });
});
