import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'graphql';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { createAdmission, holdAdmitted } from '../../../src/server/admission.js';
import { InflightBudget } from '../../../src/server/inflight.js';
import { meterOf } from '../../../src/server/response-meter.js';
import { Role } from '../../../src/modules/access/index.js';

describe('admission memo', () => {
  test('the same document and variables cost the same every time; other variables are costed anew; refusals repeat', async () => {
    const schema = await buildGatewaySchema();
    const admission = createAdmission({ schema, maxCost: 100, maxListSize: 10, rateLimiter: undefined, authEnabled: true });
    const document = parse('query P($s: [String!]!) { predictions(symbols: $s) { symbol quote { close } } }');
    const admit = (s: unknown) =>
      admission.admit({ document, operationName: 'P', variables: { s }, principal: undefined, clientAddress: '127.0.0.1' });
    // 1 + 1 + (1 + 1) = 4 per symbol
    for (let i = 0; i < 3; i++) assert.equal((await admit(['A', 'B'])).cost, 8);
    assert.equal((await admit(['A', 'B', 'C'])).cost, 12);
    assert.equal((await admit(['A', 'B'])).cost, 8);
    // over the cost limit (26 × 4 > 100) is refused every time, and so is a list over the size limit
    const many = Array.from({ length: 26 }, () => 'A');
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        admit(many.slice(0, 10).concat(many.slice(0, 1))),
        (e: { extensions: { code: string } }) => e.extensions.code === 'BAD_USER_INPUT',
      );
    }
    const big = createAdmission({ schema, maxCost: 100, maxListSize: 100, rateLimiter: undefined, authEnabled: true });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        big.admit({ document, operationName: 'P', variables: { s: many }, principal: undefined, clientAddress: '127.0.0.1' }),
        (e: { extensions: { code: string } }) => e.extensions.code === 'QUERY_TOO_COMPLEX',
      );
    }
  });

  test('introspection needs the analyst role, remembered per document but judged per caller', async () => {
    const schema = await buildGatewaySchema();
    const admission = createAdmission({ schema, maxCost: 1_000, maxListSize: 10, rateLimiter: undefined, authEnabled: true });
    const document = parse('{ __schema { queryType { name } } }');
    const as = (role: Role | undefined) =>
      admission.admit({
        document,
        operationName: undefined,
        variables: undefined,
        principal: role ? { id: 'u', name: 'u', role, via: 'jwt' } : undefined,
        clientAddress: '127.0.0.1',
      });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(as(undefined), (e: { extensions: { code: string } }) => e.extensions.code === 'UNAUTHENTICATED');
      await assert.rejects(as(Role.Viewer), (e: { extensions: { code: string } }) => e.extensions.code === 'FORBIDDEN');
      assert.ok((await as(Role.Analyst)).cost >= 1);
    }
  });
});

describe('holdAdmitted (what both transports hold for an admitted operation)', () => {
  test('a query holds its lease and a response meter, whose reserved items come back with the lease; a subscription holds the lease only', async () => {
    const inflight = new InflightBudget(1_000, { maxWaitMs: 10, maxQueue: 10 });
    const lease = await inflight.acquire(10);
    const context = {};
    const held = holdAdmitted({ lease }, { subscription: false, context }, { maxResponseItems: 500, inflight });
    const meter = meterOf(context);
    assert.ok(meter, 'a query is metered');
    await meter.reserve(200);
    assert.equal(inflight.inUse, 210);
    held.release();
    held.release();
    assert.equal(inflight.inUse, 0);

    const subscriptionLease = await inflight.acquire(10);
    const subscriptionContext = {};
    assert.equal(
      holdAdmitted({ lease: subscriptionLease }, { subscription: true, context: subscriptionContext }, { maxResponseItems: 500, inflight }),
      subscriptionLease,
    );
    assert.equal(meterOf(subscriptionContext), undefined, 'a subscription is not metered (its events are)');
    subscriptionLease.release();
  });
});
