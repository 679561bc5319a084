import {
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Link,
  type Span,
  type TracerProvider,
} from '@opentelemetry/api';

/**
 * OpenTelemetry tracing. Code everywhere creates spans through `@opentelemetry/api`, which does nothing
 * until an SDK is registered; {@link startTracing} registers one (OTLP over HTTP) only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, and loads the SDK lazily so untraced start-ups do not pay for it.
 *
 * Spans made: `graphql.request` (HTTP) and `graphql.ws.operation` (WebSocket), each the root of its
 * trace with `graphql.parse`/`graphql.validate`/`graphql.execute` children (`graphql.subscribe` for a
 * subscription's start); `graphql.ws.event` for each event a subscription delivers (its own trace, linked
 * to the subscription's operation span); `signals.tick` for the signals monitor's work; and inside
 * those `market.fetch`, `features.compute`, `inference.run` and `sql.query` (src/infra/db/tracing.ts).
 */
export const tracer = trace.getTracer('sibyl');

export async function startTracing(options: {
  endpoint: string;
  serviceName: string;
  version: string;
}): Promise<{ shutdown(): Promise<void> }> {
  // The trace SDK alone, not @opentelemetry/sdk-node: that one pulls every OTLP flavour (gRPC, protobuf),
  // logs and metrics SDKs and Prometheus/Zipkin exporters, ~180 MB of production install for an
  // OTLP/HTTP trace exporter (docs/decisions/quiet-install.md).
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
    ]);
  const provider = new NodeTracerProvider({
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override the configured attributes, as under NodeSDK.
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.version }).merge(
      detectResources({ detectors: [envDetector] }),
    ),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, '')}/v1/traces` }))],
  });
  // Registers the provider, the AsyncLocalStorage context manager and the W3C trace-context propagator,
  // as NodeSDK's start() did.
  provider.register();
  return { shutdown: () => provider.shutdown() };
}

/**
 * Whether a tracer provider is registered (by startTracing, or by a test through the API). Until then
 * the API's proxy delegates to its no-op provider, which this captures once to compare with.
 */
const NOOP_PROVIDER: TracerProvider = new ProxyTracerProvider().getDelegate();
const UNTRACED_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether spans are being recorded (a provider was registered by startTracing). */
export function isTracing(): boolean {
  return tracing();
}

function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/**
 * Runs `fn` inside a span that is the active one for everything `fn` awaits; records failures.
 * Untraced (no provider registered), `fn` runs directly with a non-recording span: the API's no-op
 * path still makes a span, a context and two promises per call, and every `predictions` request passes
 * here twice (docs/decisions/hot-path-measurements.md).
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!tracing()) return fn(UNTRACED_SPAN);
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

/**
 * Starts a child of `parent` (default: the active span); the caller ends it. Untraced, the
 * non-recording span, as {@link inSpan} does: Apollo's parse, validate and execute phases ask for three
 * on every request, each a span and a context from the API's no-op path (~1% of a warm request).
 */
export function startSpan(name: string, attributes: Attributes = {}, parent?: Span): Span {
  if (!tracing()) return UNTRACED_SPAN;
  return tracer.startSpan(name, { attributes }, parent ? trace.setSpan(context.active(), parent) : context.active());
}

/** Starts the first span of a new trace, whatever is active; `links` point at related spans elsewhere. */
export function startRootSpan(name: string, attributes: Attributes = {}, links: Link[] = []): Span {
  return tracer.startSpan(name, { attributes, root: true, links });
}

/** Runs `fn` with `span` active, so spans started inside become its children. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}
