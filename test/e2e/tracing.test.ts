import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { postQuery } from '../helpers/graphql.js';
import { stackName } from '../helpers/services.js';

interface ExportedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

describe(`OpenTelemetry tracing to an OTLP/HTTP collector (${stackName})`, () => {
  const spans: ExportedSpan[] = [];
  let collector: http.Server;
  let server: TestGateway;
  before(async () => {
    // A stand-in collector: OTLP/HTTP JSON on /v1/traces.
    collector = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (request.url === '/v1/traces') {
          const payload = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: ExportedSpan[] }> }> };
          for (const resource of payload.resourceSpans) for (const scope of resource.scopeSpans) spans.push(...scope.spans);
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as AddressInfo;
    server = await startTestGateway({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      PREDICTIONS_CACHE_TTL_MS: '0',
      MARKET_CACHE_TTL_MS: '0',
    });
  });
  after(async () => {
    collector.close();
  });

  test('a query produces one trace: request → parse/validate/execute, with market fetch and inference inside', async () => {
    const response = await postQuery(server.url, '{ predictions(symbols: ["AAPL", "MSFT"]) { symbol signal } }');
    assert.equal(response.errors, undefined);
    await server.close(); // shutdown flushes the exporter
    const request = spans.find((s) => s.name === 'graphql.request');
    assert.ok(request, `no graphql.request span among ${spans.map((s) => s.name).join(', ')}`);
    const sameTrace = spans.filter((s) => s.traceId === request.traceId).map((s) => s.name);
    for (const name of ['graphql.parse', 'graphql.validate', 'graphql.execute', 'market.fetch', 'inference.run']) {
      assert.ok(sameTrace.includes(name), `${name} not in the request's trace (${sameTrace.join(', ')})`);
    }
    const parse = spans.find((s) => s.name === 'graphql.parse' && s.traceId === request.traceId)!;
    assert.equal(parse.parentSpanId, request.spanId);
  });
});
