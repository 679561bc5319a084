import { SpanStatusCode, context, trace, type Attributes, type Span } from '@opentelemetry/api';

/**
 * OpenTelemetry tracing. Code everywhere creates spans through `@opentelemetry/api`, which does nothing
 * until an SDK is registered; {@link startTracing} registers one (OTLP over HTTP) only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, and loads the SDK lazily so untraced start-ups do not pay for it.
 *
 * Spans made: `graphql.request` (HTTP) with `graphql.parse`/`graphql.validate`/`graphql.execute`
 * children, `graphql.ws.operation` (WebSocket, no children: graphql-ws executes outside our async
 * context), `market.fetch` and `inference.run`. Not traced yet: feature computation and SQL.
 */
export const tracer = trace.getTracer('sibyl');

export async function startTracing(options: { endpoint: string; serviceName: string; version: string }): Promise<{ shutdown(): Promise<void> }> {
  const [{ NodeSDK }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.version }),
    traceExporter: new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, '')}/v1/traces` }),
    instrumentations: [],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}

/** Runs `fn` inside a span that is the active one for everything `fn` awaits; records failures. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A span for work measured after the fact (e.g. an inference run reported with its duration). */
export function recordSpan(name: string, seconds: number, attributes: Attributes): void {
  const end = Date.now();
  tracer.startSpan(name, { attributes, startTime: end - seconds * 1000 }, context.active()).end(end);
}

/** Starts a child of the active span; the caller ends it. */
export function startSpan(name: string, attributes: Attributes = {}): Span {
  return tracer.startSpan(name, { attributes }, context.active());
}

/** Runs `fn` with `span` active, so spans started inside become its children. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}
