import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'graphql';
import type { RateLimiter } from '../../../src/infra/limits/rate-limiter.js';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { createAdmission } from '../../../src/server/admission.js';
import { InflightBudget } from '../../../src/server/inflight.js';

const extensionsOf = (error: unknown) => (error as { extensions: Record<string, unknown> }).extensions;

describe('in-flight cost budget', () => {
  test('grants while it fits, queues first come first served, grants on release', async () => {
    const budget = new InflightBudget(10, { maxWaitMs: 5_000, maxQueue: 10 });
    const a = await budget.acquire(6);
    const b = await budget.acquire(4);
    assert.equal(budget.inUse, 10);
    const order: string[] = [];
    const c = budget.acquire(5).then((lease) => (order.push('c'), lease));
    // Fits already, but waits behind c: first come first served, so big operations are not starved.
    const d = budget.acquire(1).then((lease) => (order.push('d'), lease));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    assert.equal(budget.waiting, 2);
    a.release();
    a.release(); // twice is harmless
    const [leaseC, leaseD] = await Promise.all([c, d]);
    assert.deepEqual(order, ['c', 'd']);
    assert.equal(budget.inUse, 10);
    for (const lease of [b, leaseC, leaseD]) lease.release();
    assert.equal(budget.inUse, 0);
  });

  test('a wait past maxWaitMs, or a full queue, is RATE_LIMITED with retryAfterSeconds; the budget is unchanged', async () => {
    const budget = new InflightBudget(10, { maxWaitMs: 50, maxQueue: 1 });
    const held = await budget.acquire(10);
    const waiting = budget.acquire(1);
    await assert.rejects(
      budget.acquire(1),
      (error) => extensionsOf(error).code === 'RATE_LIMITED' && extensionsOf(error).limit === 'inflightCost',
    );
    await assert.rejects(waiting, (error) => extensionsOf(error).code === 'RATE_LIMITED' && extensionsOf(error).retryAfterSeconds === 1);
    assert.equal(budget.waiting, 0);
    held.release();
    assert.equal(budget.inUse, 0);
    (await budget.acquire(10)).release();
  });

  test('an operation costlier than the budget runs alone; unbounded waits (subscription events) are never refused', async () => {
    const budget = new InflightBudget(10, { maxWaitMs: 20, maxQueue: 0 });
    const huge = await budget.acquire(1_000);
    assert.equal(huge.cost, 10);
    const event = budget.acquire(3, 'unbounded');
    await new Promise((resolve) => setTimeout(resolve, 60));
    huge.release();
    (await event).release();
    assert.equal(budget.inUse, 0);
  });
});

describe('admission holds the in-flight budget', () => {
  const query = parse('query P($s: [String!]!) { predictions(symbols: $s) { symbol } }');
  const request = (s: string[]) => ({
    document: query,
    operationName: 'P',
    variables: { s },
    principal: undefined,
    clientAddress: '127.0.0.1',
  });

  test('the lease holds the operation cost until released; refusals (cost, rate, depth) hold nothing', async () => {
    const schema = await buildGatewaySchema();
    const inflight = new InflightBudget(100, { maxWaitMs: 20, maxQueue: 10 });
    let allow = true;
    const rateLimiter: RateLimiter = {
      engine: 'memory',
      consume: async (_key: string, cost: number) => ({
        allowed: allow,
        limit: 1_000,
        remaining: allow ? 1_000 - cost : 0,
        resetSeconds: 7,
      }),
    } as unknown as RateLimiter;
    const admission = createAdmission({
      schema,
      maxCost: 80,
      maxNodes: 50,
      maxVariablesDepth: 4,
      maxListSize: 100,
      rateLimiter,
      inflight,
      authEnabled: true,
    });
    const admitted = await admission.admit(request(['A', 'B', 'C']));
    assert.equal(admitted.cost, 6);
    assert.equal(inflight.inUse, 6);
    admitted.lease.release();
    assert.equal(inflight.inUse, 0);

    await assert.rejects(
      admission.admit(request(Array.from({ length: 41 }, () => 'A'))),
      (e) => extensionsOf(e).code === 'QUERY_TOO_COMPLEX',
    );
    allow = false;
    await assert.rejects(
      admission.admit(request(['A'])),
      (e) => extensionsOf(e).code === 'RATE_LIMITED' && extensionsOf(e).retryAfterSeconds === 7,
    );
    allow = true;
    await assert.rejects(
      admission.admit({ ...request(['A']), variables: { s: [[[[['A']]]]] } }),
      (e) => extensionsOf(e).code === 'BAD_USER_INPUT' && extensionsOf(e).limit === 'variablesDepth',
    );
    assert.equal(inflight.inUse, 0);

    // Full: the next operation waits, then is refused; once released it is admitted.
    const all = await inflight.acquire(100);
    await assert.rejects(
      admission.admit(request(['A'])),
      (e) => extensionsOf(e).code === 'RATE_LIMITED' && extensionsOf(e).limit === 'inflightCost',
    );
    all.release();
    (await admission.admit(request(['A']))).lease.release();
    assert.equal(inflight.inUse, 0);
  });

  test('5,000-level variables are refused before anything recurses; expanded fields over MAX_EXPANDED_NODES are refused', async () => {
    const schema = await buildGatewaySchema();
    const admission = createAdmission({
      schema,
      maxCost: 100_000,
      maxNodes: 50,
      maxListSize: 100,
      rateLimiter: undefined,
      authEnabled: true,
    });
    let deep: unknown = 'A';
    for (let i = 0; i < 5_000; i++) deep = [deep];
    assert.throws(() => JSON.stringify(deep), RangeError, 'what admission used to do with them first');
    await assert.rejects(
      admission.admit({ ...request(['A']), variables: { s: deep } }),
      (e) => extensionsOf(e).code === 'BAD_USER_INPUT' && extensionsOf(e).max === 32,
    );
    const wide = `{ ${Array.from({ length: 51 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    await assert.rejects(
      admission.admit({
        document: parse(wide),
        operationName: undefined,
        variables: undefined,
        principal: undefined,
        clientAddress: '127.0.0.1',
      }),
      (e) => extensionsOf(e).code === 'QUERY_TOO_COMPLEX' && extensionsOf(e).limit === 'nodes' && extensionsOf(e).actual === 51,
    );
  });
});
