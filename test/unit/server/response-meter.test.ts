import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildSchema, execute, parse, type ExecutionResult } from 'graphql';
import { InflightBudget } from '../../../src/server/inflight.js';
import { ResponseMeter, meterListFields, startMeter } from '../../../src/server/response-meter.js';

const limitOf = (error: unknown) => (error as { extensions: { code: string; limit: string } }).extensions;

describe('response meter', () => {
  test('counts list items as they resolve; past the limit the operation is refused and later lists do not run', async () => {
    const schema = buildSchema('type Query { items(n: Int!): [Int!]! later: [Int!]! }');
    let laterRan = false;
    const rootValue = { items: ({ n }: { n: number }) => Array.from({ length: n }, (_, i) => i), later: () => ((laterRan = true), [1]) };
    meterListFields(schema);
    const run = async (query: string, max: number) => {
      const contextValue = {};
      const meter = startMeter(contextValue, max);
      const result = (await execute({ schema, document: parse(query), rootValue, contextValue })) as ExecutionResult;
      return { meter, result };
    };
    const ok = await run('{ items(n: 5) }', 10);
    assert.equal(ok.meter.items, 5);
    assert.equal(ok.meter.exceeded, false);
    const over = await run('{ a: items(n: 8) b: items(n: 8) later }', 10);
    assert.equal(over.meter.exceeded, true);
    assert.deepEqual(limitOf(over.meter.error()), { code: 'QUERY_TOO_COMPLEX', limit: 'responseItems', max: 10, http: { status: 400 } });
    assert.equal(laterRan, false, 'a list field after the limit fails without running');
    // No meter (a subscription event): resolved as before.
    const plain = (await execute({ schema, document: parse('{ items(n: 50) }'), rootValue, contextValue: {} })) as ExecutionResult;
    assert.equal((plain.data?.items as unknown[]).length, 50);
  });

  test('reservations: refused past the limit before the resolver runs; held in the in-flight budget until release, also when the resolver fails', async () => {
    const budget = new InflightBudget(1_000, { maxWaitMs: 20, maxQueue: 10 });
    const meter = new ResponseMeter(2_500, budget);
    const first = await meter.reserve(1_000);
    assert.equal(budget.inUse, 1_000);
    first(); // the resolver answered (or failed): the items are counted instead, the budget stays held
    meter.count([1, 2, 3]);
    // The budget is full: the second reservation waits, then the operation is refused with RATE_LIMITED.
    await assert.rejects(meter.reserve(1_000), (e) => limitOf(e).code === 'RATE_LIMITED');
    assert.equal(meter.error().extensions.code, 'RATE_LIMITED');
    meter.release();
    meter.release();
    assert.equal(budget.inUse, 0);

    const small = new ResponseMeter(1_500);
    const pending = await small.reserve(1_000);
    // While reserved, the room is taken; afterwards what the resolver returned counts.
    await assert.rejects(small.reserve(1_000), (e) => limitOf(e).limit === 'responseItems');
    pending();
    small.count(Array.from({ length: 600 }, () => 0));
    assert.equal(small.items, 600);
  });
});
