import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Client } from 'graphql-ws';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { SignalRecorder } from '../helpers/signals.js';
import { stackName } from '../helpers/services.js';

/**
 * The shape of traces, read from an in-memory exporter registered in this process (the gateway creates
 * spans through @opentelemetry/api, so whichever provider is registered receives them): which spans a
 * query makes, over HTTP and over graphql-ws, and which span is whose parent. Caches are off, so every
 * request fetches bars, computes features and runs inference.
 */
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

const spans = () => exporter.getFinishedSpans();
const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const traceOf = (span: ReadableSpan) => spans().filter((s) => s.spanContext().traceId === span.spanContext().traceId);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const only = (list: ReadableSpan[], name: string, where: (s: ReadableSpan) => boolean = () => true) => {
  const found = list.filter((s) => s.name === name && where(s));
  assert.equal(found.length, 1, `expected one ${name}, found ${found.length} among ${list.map((s) => s.name).join(', ')}`);
  return found[0]!;
};
/** Every span of `trace` descends from `root`. */
function assertOneTree(trace: ReadableSpan[], root: ReadableSpan) {
  const byId = new Map(trace.map((s) => [idOf(s), s]));
  for (const span of trace) {
    let current: ReadableSpan | undefined = span;
    for (let depth = 0; current && current !== root && depth < 20; depth++) current = byId.get(parentOf(current) ?? '');
    assert.equal(current, root, `${span.name} does not descend from ${root.name}`);
  }
}

describe(`trace structure, in-memory exporter (${stackName})`, () => {
  let server: TestGateway;
  const clients: Client[] = [];
  before(async () => {
    server = await startTestGateway({
      PREDICTIONS_CACHE_TTL_MS: '0',
      MARKET_CACHE_TTL_MS: '0',
      FEATURES_CACHE_TTL_MS: '0',
      SYNTHETIC_TICK_MS: '300',
      SIGNALS_INTERVAL_MS: '0',
      HISTORY_FLUSH_INTERVAL_MS: '50',
    });
  });
  beforeEach(() => exporter.reset());
  after(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await server.close();
    await provider.shutdown();
  });

  test('HTTP query: graphql.request → parse/validate/execute, with market fetch, features, inference and SQL in its trace', async () => {
    // Recorded predictions make `history` read something; the flush is quick (HISTORY_FLUSH_INTERVAL_MS).
    await postQuery(server.url, '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol } }');
    await server.gateway.history.flush();
    exporter.reset();

    const response = await postQuery(
      server.url,
      'query Cards { predictions(symbols: ["AAPL", "MSFT"]) { symbol signal history(last: 2) { confidence } } }',
    );
    assert.equal(response.errors, undefined);
    const request = only(spans(), 'graphql.request');
    assert.equal(parentOf(request), undefined, 'the request span is the root');
    assert.equal(request.attributes['graphql.operation.type'], 'query');
    assert.equal(request.attributes['graphql.operation.name'], 'Cards');
    const trace = traceOf(request);
    for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.execute'])
      assert.equal(parentOf(only(trace, phase)), idOf(request), `${phase} is a child of the request`);
    for (const name of ['market.fetch', 'features.compute', 'inference.run', 'sql.query']) {
      assert.ok(
        trace.some((s) => s.name === name),
        `${name} in the request's trace (${trace.map((s) => s.name).join(', ')})`,
      );
    }
    assertOneTree(trace, request);

    const features = only(trace, 'features.compute');
    assert.equal(features.attributes['sibyl.symbols'], 2);
    const history = trace.find((s) => s.name === 'sql.query' && String(s.attributes['db.statement']).includes('prediction_history'));
    assert.ok(
      history,
      `a sql.query reading prediction_history: ${trace
        .filter((s) => s.name === 'sql.query')
        .map((s) => s.attributes['db.statement'])
        .join(' | ')}`,
    );
    assert.equal(history.attributes['db.system'], 'postgresql');
    assert.equal(history.attributes['db.operation'], 'SELECT');
    assert.equal(history.attributes['sibyl.db.engine'], server.gateway.database.engine);
    assert.equal(typeof history.attributes['db.response.returned_rows'], 'number');
    assert.ok((history.attributes['db.response.returned_rows'] as number) > 0, 'the recorded predictions were read');
    // Values travel as parameters and are never recorded.
    assert.doesNotMatch(String(history.attributes['db.statement']), /AAPL|MSFT/);
    assert.match(String(history.attributes['db.statement']), /\$1/);
  });

  test('SQL outside any traced operation (background work) makes no span', async () => {
    await server.gateway.database.db.selectFrom('api_keys').select('id').execute();
    // Only this query is judged: the synthetic market keeps ticking, and a monitor tick is a trace of its own.
    const ours = spans().filter((s) => s.name === 'sql.query' && /api_keys/.test(String(s.attributes['db.statement'])));
    assert.deepEqual(
      ours.map((s) => s.name),
      [],
    );
  });

  test('graphql-ws query: graphql.ws.operation is the root, with parse/validate/execute children and the work inside', async () => {
    const client = wsClient(server.url);
    clients.push(client);
    const result = await wsExecute(client, 'query One { prediction(symbol: "NVDA") { symbol signal } }');
    assert.equal(result.errors, undefined);
    const operation = only(spans(), 'graphql.ws.operation');
    assert.equal(parentOf(operation), undefined);
    assert.equal(operation.attributes['graphql.operation.type'], 'query');
    assert.equal(operation.attributes['graphql.operation.name'], 'One');
    const trace = traceOf(operation);
    for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.execute'])
      assert.equal(parentOf(only(trace, phase)), idOf(operation), `${phase} is a child of the operation`);
    const execute = only(trace, 'graphql.execute');
    for (const name of ['market.fetch', 'features.compute', 'inference.run']) {
      const span = only(trace, name);
      assert.equal(parentOf(span), idOf(execute), `${name} runs inside graphql.execute`);
    }
    assertOneTree(trace, operation);
  });

  test('graphql-ws subscription: its start is one trace, each event it delivers another (graphql.ws.event → graphql.execute), linked to it; the monitor tick a third', async () => {
    const client = wsClient(server.url);
    clients.push(client);
    const recorder = new SignalRecorder(client, { symbols: ['TSLA'] });
    await recorder.until((r) => r.messages.length >= 1, 20_000, 'one signal');
    recorder.dispose();

    const operation = only(spans(), 'graphql.ws.operation', (s) => s.attributes['graphql.operation.type'] === 'subscription');
    assert.equal(parentOf(operation), undefined);
    const start = traceOf(operation);
    for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.subscribe'])
      assert.equal(parentOf(only(start, phase)), idOf(operation), `${phase} is a child of the subscription's operation`);

    const events = spans().filter((s) => s.name === 'graphql.ws.event' && s.links.some((l) => l.context.spanId === idOf(operation)));
    assert.ok(
      events.length >= 1,
      `an event span linked to the subscription (${spans()
        .map((s) => s.name)
        .join(', ')})`,
    );
    const event = events[0]!;
    assert.equal(parentOf(event), undefined, 'each event is the root of its own trace');
    assert.notEqual(event.spanContext().traceId, operation.spanContext().traceId);
    const tick = traceOf(event);
    assert.equal(parentOf(only(tick, 'graphql.execute')), idOf(event));
    assertOneTree(tick, event);

    // The work behind the event: the signals monitor's tick, a trace of its own.
    const monitor = spans().find((s) => s.name === 'signals.tick' && traceOf(s).some((c) => c.name === 'inference.run'));
    assert.ok(
      monitor,
      `a signals.tick trace with inference (${spans()
        .map((s) => s.name)
        .join(', ')})`,
    );
    assert.equal(parentOf(monitor), undefined);
    const work = traceOf(monitor);
    for (const name of ['market.fetch', 'features.compute', 'inference.run'])
      assert.ok(
        work.some((s) => s.name === name),
        `${name} in the monitor's tick`,
      );
    assertOneTree(work, monitor);
  });
});
