import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  getOperationAST,
  parse,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { startRootSpan } from '../../../src/infra/tracing/tracing.js';
import { Role } from '../../../src/modules/access/index.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { createOperationExecutor } from '../../../src/server/compiled-execution.js';
import { InflightBudget, type Lease } from '../../../src/server/inflight.js';
import { SharedExecution, eventCost, shareKey, type OperationRun } from '../../../src/server/ws.execution.js';

/** A hub whose every subscriber receives the same payload objects, like the signals bus delivers them. */
function hub() {
  const queues = new Set<{ push(value: unknown): void }>();
  let closed = 0;
  return {
    get closed() {
      return closed;
    },
    publish(value: unknown) {
      for (const q of queues) q.push(value);
    },
    subscribe(): AsyncIterable<unknown> {
      const buffered: unknown[] = [];
      let wake: (() => void) | undefined;
      const queue = { push: (v: unknown) => (buffered.push(v), wake?.()) };
      queues.add(queue);
      return {
        [Symbol.asyncIterator]: () => ({
          async next() {
            while (buffered.length === 0) await new Promise<void>((resolve) => (wake = resolve));
            return { done: false, value: buffered.shift() };
          },
          async return() {
            queues.delete(queue);
            closed++;
            return { done: true, value: undefined };
          },
        }),
      };
    },
  };
}

function fixture() {
  const events = hub();
  const executions = { count: 0, inUseSeen: [] as number[] };
  let budget: InflightBudget | undefined;
  const Tick = new GraphQLObjectType({
    name: 'Tick',
    fields: {
      value: {
        type: GraphQLInt,
        resolve: (event: { value: number } | number) => {
          executions.count++;
          if (budget) executions.inUseSeen.push(budget.inUse);
          return typeof event === 'number' ? event : event.value;
        },
      },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        ok: { type: GraphQLString, resolve: () => 'yes' },
        boom: { type: GraphQLString, resolve: () => Promise.reject(new Error('x')) },
      },
    }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        ticks: {
          type: Tick,
          args: { symbols: { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLString))) } },
          subscribe: () => events.subscribe(),
          resolve: (event: unknown) => event,
        },
      },
    }),
  });
  return { events, executions, schema, setBudget: (b: InflightBudget) => (budget = b) };
}

function lease(): Lease & { released: number } {
  const l = { cost: 1, released: 0, release: () => void l.released++ };
  return l;
}

function args(schema: GraphQLSchema, query: string, variables: Record<string, unknown> = {}): ExecutionArgs {
  return { schema, document: parse(query), variableValues: variables, contextValue: {} };
}

async function take(stream: AsyncIterable<ExecutionResult>): Promise<ExecutionResult> {
  const step = await stream[Symbol.asyncIterator]().next();
  assert.equal(step.done, false);
  return step.value as ExecutionResult;
}

const SUB = 'subscription { ticks(symbols: ["A"]) { value } }';

describe('SharedExecution', () => {
  test('subscribers with one share key execute each event once and get the same result; other keys and non-object payloads execute on their own', async () => {
    const { events, executions, schema } = fixture();
    const execution = new SharedExecution();
    const run = (key: string | undefined): OperationRun => ({ span: startRootSpan('op'), lease: lease(), shareKey: key });
    const streams: Array<AsyncIterable<ExecutionResult>> = [];
    for (const key of ['k', 'k', 'k', 'other', undefined]) {
      const a = args(schema, SUB);
      execution.register(a, run(key));
      streams.push((await execution.subscribe(a)) as AsyncIterable<ExecutionResult>);
    }
    events.publish({ value: 7 });
    const results = await Promise.all(streams.map(take));
    assert.deepEqual(JSON.parse(JSON.stringify(results.map((r) => r.data))), Array(5).fill({ ticks: { value: 7 } }));
    assert.equal(results[0], results[1], 'the same result object is sent to each sharer');
    assert.equal(executions.count, 3, 'one execution for key k, one for other, one unshared');
    events.publish(8);
    await Promise.all(streams.map(take));
    assert.equal(executions.count, 3 + 5, 'a payload that is not an object is never shared');
  });

  test('with an executor (GRAPHQL_JIT=on), queries run compiled and subscription events with graphql-js', async () => {
    const { events, executions, schema } = fixture();
    const compiled: string[] = [];
    const executor = createOperationExecutor(schema, {
      jit: true,
      cacheSize: 10,
      logger: createLogger({ level: 'silent', format: 'json' }),
      onCompile: (outcome) => compiled.push(outcome),
    });
    const execution = new SharedExecution(executor);
    const query = args(schema, '{ ok }');
    execution.register(query, { span: startRootSpan('op'), lease: lease() });
    assert.deepEqual(JSON.parse(JSON.stringify(await execution.execute(query))), { data: { ok: 'yes' } });
    assert.deepEqual(compiled, ['compiled']);
    const sub = args(schema, SUB);
    execution.register(sub, { span: startRootSpan('op'), lease: lease(), shareKey: 'k' });
    const stream = (await execution.subscribe(sub)) as AsyncIterable<ExecutionResult>;
    events.publish({ value: 3 });
    assert.deepEqual(JSON.parse(JSON.stringify((await take(stream)).data)), { ticks: { value: 3 } });
    assert.equal(executions.count, 1);
    assert.deepEqual(compiled, ['compiled'], 'nothing of the subscription was compiled');
  });

  test("an operation's lease is released once its subscription has started, and once its execution ended, a failed one included", async () => {
    const { schema } = fixture();
    const execution = new SharedExecution();
    for (const query of ['{ ok }', '{ boom }', SUB]) {
      const a = args(schema, query);
      const l = lease();
      execution.register(a, { span: startRootSpan('op'), lease: l });
      const result = getOperationAST(a.document)?.operation === 'subscription' ? await execution.subscribe(a) : await execution.execute(a);
      assert.ok(result);
      assert.equal(l.released, 1, query);
    }
  });

  test('each event holds its share of the in-flight budget while it executes, then gives it back', async () => {
    const { events, executions, schema, setBudget } = fixture();
    const budget = new InflightBudget(100, { maxWaitMs: 10, maxQueue: 10 });
    setBudget(budget);
    const execution = new SharedExecution();
    const a = args(schema, SUB);
    execution.register(a, { span: startRootSpan('op'), lease: lease(), eventShare: { budget, cost: 30 } });
    const stream = (await execution.subscribe(a)) as AsyncIterable<ExecutionResult>;
    events.publish({ value: 1 });
    await take(stream);
    assert.deepEqual(executions.inUseSeen, [30]);
    assert.equal(budget.inUse, 0);
  });

  test('ending a subscription ends its source stream', async () => {
    const { events, schema } = fixture();
    const execution = new SharedExecution();
    const a = args(schema, SUB);
    execution.register(a, { span: startRootSpan('op'), lease: lease() });
    const iterator = ((await execution.subscribe(a)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    assert.deepEqual(await iterator.return!(), { done: true, value: undefined });
    assert.equal(events.closed, 1);
  });

  test('a subscription refused at its start (bad arguments) is one result, not a stream', async () => {
    const { schema } = fixture();
    const execution = new SharedExecution();
    const a = args(schema, 'subscription($s: [String!]!) { ticks(symbols: $s) { value } }', { s: null });
    execution.register(a, { span: startRootSpan('op'), lease: lease() });
    const result = (await execution.subscribe(a)) as ExecutionResult;
    assert.ok(result.errors?.length);
  });
});

describe('share keys and event cost', () => {
  test('the share key separates roles, operation names, queries and variables', () => {
    const reader = { id: 'a', name: 'a', role: Role.Viewer, via: 'apikey' as const };
    const otherReader = { ...reader, id: 'b' };
    const analyst = { ...reader, role: Role.Analyst };
    const payload = { query: SUB, operationName: 'S', variables: { s: ['A'] } };
    assert.equal(shareKey(reader, payload), shareKey(otherReader, payload), 'same role: shared');
    const variants = [
      shareKey(reader, payload),
      shareKey(analyst, payload),
      shareKey(undefined, payload),
      shareKey(reader, { ...payload, operationName: 'T' }),
      shareKey(reader, { ...payload, query: `${SUB} ` }),
      shareKey(reader, { ...payload, variables: { s: ['B'] } }),
    ];
    assert.equal(new Set(variants).size, variants.length);
  });

  test("an event costs the subscription's cost divided by its symbols, rounded up; what cannot be read costs it whole", () => {
    const { schema } = fixture();
    const operation = (query: string) => getOperationAST(parse(query))!;
    const withVariable = operation('subscription($s: [String!]!) { ticks(symbols: $s) { value } }');
    assert.equal(eventCost(schema, withVariable, { s: ['A', 'B', 'C'] }, 20), 7);
    assert.equal(eventCost(schema, withVariable, { s: ['A'] }, 20), 20);
    assert.equal(eventCost(schema, withVariable, { s: 42 }, 20), 20, 'variables that do not coerce');
    assert.equal(eventCost(schema, operation('subscription { ticks(symbols: ["A", "B"]) { value } }'), undefined, 9), 5);
    assert.equal(eventCost(schema, operation('subscription { __typename }'), undefined, 9), 9);
  });
});
