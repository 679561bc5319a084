import 'reflect-metadata';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSchema, graphqlSync } from 'graphql';
import { IntervalArgs } from '../../../src/modules/predictions/predictions.args.js';
import { bindSyncField } from '../../../src/schema/sync-field.js';

test('a bound field answers synchronously, validates every value (remembered passes or not) and keeps defaults', () => {
  const schema = buildSchema('type Item { n: Int! twice: Int! band(level: Float = 0.95): Float } type Query { items: [Item!]! }');
  bindSyncField(schema, 'Item', 'band', (item: { n: number }, { level }: IntervalArgs) => item.n * level, IntervalArgs);
  bindSyncField(schema, 'Item', 'twice', (item: { n: number }) => item.n * 2);
  assert.throws(() => bindSyncField(schema, 'Item', 'band', () => 0), /takes arguments/);
  assert.throws(() => bindSyncField(schema, 'Item', 'missing', () => 0), /not in the schema/);
  const rootValue = { items: [{ n: 1 }, { n: 2 }] };
  const run = (query: string) => graphqlSync({ schema, source: query, rootValue }); // throws if anything answers a promise
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(JSON.parse(JSON.stringify(run('{ items { twice band a: band(level: 0.8) } }').data)), {
      items: [
        { twice: 2, band: 0.95, a: 0.8 },
        { twice: 4, band: 1.9, a: 1.6 },
      ],
    });
    const bad = run('{ items { band(level: 0.5) } }');
    assert.equal(bad.errors?.length, 2);
    assert.match(bad.errors![0]!.message, /Argument Validation Error/);
  }
});
