import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildSchema, parse, validate } from 'graphql';
import { oncePerOperationRule } from '../../../src/server/once-per-operation.js';

const schema = buildSchema(`
  type Health { status: String version: String }
  type Item { health: Health name: String }
  type Query { health: Health item: Item other: String }
`);
const rule = oncePerOperationRule(['health']);
const refusals = (query: string) =>
  validate(schema, parse(query), [rule]).map((e) => ({
    limit: e.extensions.limit,
    max: e.extensions.max,
    actual: e.extensions.actual,
    code: e.extensions.code,
  }));

describe('oncePerOperationRule', () => {
  test('30 aliases of health are refused with QUERY_TOO_COMPLEX naming the limit', () => {
    const query = `{ ${Array.from({ length: 30 }, (_, i) => `h${i}: health { status }`).join(' ')} }`;
    assert.deepEqual(refusals(query), [{ limit: 'healthSelections', max: 1, actual: 30, code: 'QUERY_TOO_COMPLEX' }]);
  });

  test('one response key is one resolver run: the same field repeated, aliased once, is allowed', () => {
    assert.deepEqual(refusals('{ health { status } health { version } other }'), []);
    assert.deepEqual(refusals('{ h: health { status } ... on Query { h: health { version } } }'), []);
  });

  test('a field of the same name on another type is not a root field', () => {
    assert.deepEqual(refusals('{ health { status } a: item { health { status } } b: item { health { status } } }'), []);
  });

  test('counted per operation: each of two operations may select it once', () => {
    assert.deepEqual(refusals('query A { health { status } } query B { x: health { status } }'), []);
    assert.equal(refusals('query A { health { status } } query B { x: health { status } y: health { status } }').length, 1);
  });

  test('aliases hidden in fragments, inline fragments and nested spreads all count', () => {
    fc.assert(
      fc.property(
        // Each alias of `health` placed directly, in an inline fragment, or in a named fragment spread from
        // the operation or from another fragment; aliases may repeat (the same key runs once).
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom('direct', 'inline', 'fragment', 'nested')), {
          minLength: 1,
          maxLength: 12,
        }),
        (placements) => {
          const direct: string[] = [];
          const fragments: string[] = [];
          placements.forEach(([alias, where], i) => {
            const field = `k${alias}: health { status }`;
            if (where === 'direct') direct.push(field);
            else if (where === 'inline') direct.push(`... on Query { ${field} }`);
            else if (where === 'fragment') {
              direct.push(`...F${i}`);
              fragments.push(`fragment F${i} on Query { ${field} }`);
            } else {
              direct.push(`...O${i}`);
              fragments.push(`fragment O${i} on Query { other ...F${i} }`, `fragment F${i} on Query { ${field} }`);
            }
          });
          const keys = new Set(placements.map(([alias]) => alias)).size;
          const found = refusals(`{ ${direct.join(' ')} } ${fragments.join(' ')}`);
          assert.deepEqual(found, keys > 1 ? [{ limit: 'healthSelections', max: 1, actual: keys, code: 'QUERY_TOO_COMPLEX' }] : []);
        },
      ),
      { numRuns: 300 },
    );
  });
});
