import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import cors from '@fastify/cors';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { NoSchemaIntrospectionCustomRule, specifiedRules, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { ContextFactory, OperationTrace } from '../context/context.js';
import { fixedFieldsLogger, type Logger } from '../infra/logger/logger.js';
import type { Metrics } from '../infra/metrics/metrics.js';
import { inSpan } from '../infra/tracing/tracing.js';
import type { Authenticator, Principal, Revocations } from '../modules/access/index.js';
import { ErrorCode } from '../shared/errors.js';
import type { HealthService } from '../modules/health/index.js';
import type { Admission } from './admission.js';
import { createApollo } from './apollo.js';
import type { CacheControlOptions } from './cache-control.js';
import { createOperationExecutor } from './compiled-execution.js';
import type { ExplorerOptions } from './explorer.js';
import { healthRoutes } from './health-routes.js';
import type { InflightBudget } from './inflight.js';
import { limitRules, type QueryLimits } from './limits.js';
import { securityHeaders } from './security-headers.js';
import { createOperationObserver } from './observe.js';
import { oncePerOperationRule } from './once-per-operation.js';
import { createFastLane } from './response-cache/fast-lane.js';
import { cachingHandler, responseCachePlugin, type AnswerCache, type StoreResult } from './response-cache/http.js';
import { meterListFields } from './response-meter.js';
import { webApp } from './web-app.js';
import { createWsTransport } from './ws.js';

export interface GatewayServerOptions {
  schema: GraphQLSchema;
  createContext: ContextFactory;
  health: HealthService;
  /** Requests per second each client address may make to `/health/*` (default 30). */
  healthRateLimitPerSecond?: number;
  metrics: Metrics;
  logger: Logger;
  isProduction: boolean;
  introspection: boolean;
  /** GRAPHQL_JIT and GRAPHQL_JIT_CACHE_SIZE: queries and mutations compiled (compiled-execution.ts), or run by graphql-js. */
  execution: { jit: boolean; jitCacheSize: number };
  /** GET /graphql in a browser, and the built-in explorer at /explorer/. */
  explorer: ExplorerOptions;
  maxSubscriptionsPerConnection?: number;
  authenticator: Authenticator;
  /** Revoked API keys, announced by any instance: WebSocket connections using one are closed at once. */
  revocations?: Pick<Revocations, 'listen'>;
  /** How often WebSocket connections re-check their API key (default 30 s). */
  credentialRecheckMs?: number;
  /** WebSocket ping interval (and how long a pong may take). */
  keepAliveMs?: number;
  /** Which proxies' X-Forwarded-For to believe for the client address (fastify's trustProxy); default false. */
  trustProxy?: false | readonly string[];
  admission: Admission;
  /** The in-flight budget the admission holds operations in (subscription events take their share too). */
  inflight?: InflightBudget;
  limits: Omit<QueryLimits, 'maxCost'> & { maxBodyBytes: number; maxResponseItems: number };
  /** Browser origins allowed to call cross-origin; empty: none. */
  corsOrigins: readonly string[];
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** Cache-Control on GET answers (cache-control.ts). */
  cacheControl: CacheControlOptions;
  /** The built web app to serve at `/`; undefined: none. */
  webApp?: { dir: string } | undefined;
  /** RESPONSE_CACHE=on: whole answers of POST queries (response-cache/http.ts); undefined: off. */
  responseCache?: AnswerCache | undefined;
}

export interface GatewayServer {
  listen(host: string, port: number): Promise<{ port: number }>;
  /**
   * Graceful stop: readiness turns 503, running HTTP requests and WebSocket queries finish (bounded by
   * `timeoutMs`), sockets close with 1001, the listener closes. Whatever is still open when `timeoutMs`
   * runs out is cut (with a warning); this never rejects. Does not touch databases or Redis: the
   * composition root closes those after this resolves.
   */
  close(timeoutMs: number): Promise<void>;
}

/** Whether `promise` settles (either way) within `ms`; the timer is cleared either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'fastify' {
  interface FastifyRequest {
    trace: OperationTrace;
  }
}

export async function createGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const { logger } = options;
  const observer = createOperationObserver(options.metrics, logger);
  // The request log line holds only fields set below: it needs no redaction pass.
  const requestLines = fixedFieldsLogger(logger);
  // Once per request: the response cache authenticates before Apollo does (the role is part of its key).
  const principals = new WeakMap<IncomingMessage, Promise<Principal | undefined>>();
  const principalOf = (request: IncomingMessage): Promise<Principal | undefined> => {
    let principal = principals.get(request);
    if (!principal) principals.set(request, (principal = options.authenticator.authenticate(request.headers.authorization)));
    return principal;
  };
  const responseCache = options.responseCache;
  const countCache = {
    lookup: (result: 'hit' | 'miss') => options.metrics.cacheRequestsTotal.inc({ tier: 'response', result }),
    store: (outcome: StoreResult) => options.metrics.responseCacheStoresTotal.inc({ outcome }),
  };
  // Hits answered before fastify's lifecycle (response-cache/fast-lane.ts). Behind trusted proxies the
  // client address (rate limits of anonymous callers) is fastify's to work out: hits go through fastify.
  const lane =
    responseCache && !options.trustProxy
      ? createFastLane({
          cache: responseCache,
          principalOf,
          admission: options.admission,
          observer,
          count: countCache,
          logger,
          requestLines,
          maxBodyBytes: options.limits.maxBodyBytes,
          requestId: REQUEST_ID,
        })
      : undefined;
  const fastify = Fastify({
    ...(lane && {
      serverFactory: (
        handler: (request: IncomingMessage, response: ServerResponse) => void,
        settings: { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number; maxRequestsPerSocket?: number },
      ) => {
        const server = http.createServer((request, response) => lane.handle(request, response, handler));
        // What fastify sets on a server it creates itself, and does not on one a factory made.
        if (settings.keepAliveTimeout !== undefined) server.keepAliveTimeout = settings.keepAliveTimeout;
        if (settings.requestTimeout !== undefined) server.requestTimeout = settings.requestTimeout;
        if (settings.connectionTimeout !== undefined) server.setTimeout(settings.connectionTimeout);
        if (settings.maxRequestsPerSocket) server.maxRequestsPerSocket = settings.maxRequestsPerSocket;
        return server;
      },
    }),
    loggerInstance: logger,
    // Fastify's two lines per request are replaced by our one (onResponse below), which knows the operation.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: false,
    // Trust a caller's id only if it looks like one: it ends up in our logs and response headers.
    genReqId: (req) => {
      const header = req.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    },
    bodyLimit: options.limits.maxBodyBytes,
    // The client address (logs, per-IP rate limits of anonymous callers) is the socket's peer unless
    // TRUST_PROXY names the proxies in front; trusting every X-Forwarded-For would let any client
    // choose its own address, and so its own rate-limit bucket.
    trustProxy: options.trustProxy ? [...options.trustProxy] : false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  meterListFields(options.schema);
  const validationRules: ValidationRule[] = [
    ...(options.introspection ? [] : [NoSchemaIntrospectionCustomRule]),
    ...limitRules(options.limits),
    // The component report is cached, but each alias of `health` would still be a resolver run.
    oncePerOperationRule(['health']),
  ];
  // After meterListFields: compiled operations call the resolvers the schema holds when they compile.
  const executor = options.execution.jit
    ? createOperationExecutor(options.schema, {
        jit: true,
        cacheSize: options.execution.jitCacheSize,
        logger,
        onCompile: (result) => options.metrics.graphqlCompilationsTotal.inc({ result }),
      })
    : undefined;
  const apollo = createApollo({
    schema: options.schema,
    executor,
    isProduction: options.isProduction,
    explorer: options.explorer,
    validationRules,
    observer,
    admission: options.admission,
    maxTokens: options.limits.maxTokens,
    maxResponseItems: options.limits.maxResponseItems,
    inflight: options.inflight,
    cacheControl: options.cacheControl,
    extraPlugins: [fastifyApolloDrainPlugin(fastify), ...(options.responseCache ? [responseCachePlugin(options.schema)] : [])],
  });
  const ws = createWsTransport({
    schema: options.schema,
    createContext: options.createContext,
    logger,
    isProduction: options.isProduction,
    validationRules: [...specifiedRules, ...validationRules],
    executor,
    observer,
    ...(options.maxSubscriptionsPerConnection !== undefined && { maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection }),
    authenticator: options.authenticator,
    admission: options.admission,
    inflight: options.inflight,
    maxTokens: options.limits.maxTokens,
    maxResponseItems: options.limits.maxResponseItems,
    maxMessageBytes: options.limits.maxBodyBytes,
    ...(options.revocations && { revocations: options.revocations }),
    ...(options.credentialRecheckMs !== undefined && { credentialRecheckMs: options.credentialRecheckMs }),
    ...(options.keepAliveMs !== undefined && { keepAliveMs: options.keepAliveMs }),
  });

  // Only listed origins may call from a browser page on another origin; Apollo's CSRF prevention
  // (csrfPrevention) covers the simple requests CORS does not stop.
  await fastify.register(cors, { origin: options.corsOrigins.length > 0 ? [...options.corsOrigins] : false, maxAge: 600 });
  // Security headers. The web app and the built-in explorer need only same-origin scripts, styles and
  // workers, plus their WebSocket (graphql-ws) to this host. Apollo Sandbox (EXPLORER=sandbox) loads
  // scripts from Apollo's CDN into an iframe: its page at GET /graphql carries its own policy (a meta
  // tag with nonces) and is exempted from this one below, and only it.
  fastify.addHook(
    'onRequest',
    securityHeaders({
      contentSecurityPolicy: { directives: { 'connect-src': ["'self'", 'ws:', 'wss:'] } },
      crossOriginEmbedderPolicy: false,
    }),
  );

  // Set by close(): the share of its budget running WebSocket queries may take before their sockets get 1001.
  let wsDrainMs = 2_000;
  await fastify.register(websocket, {
    // graphql-ws's own check (maxMessageBytes) answers with a 4400 close and a reason; this is the backstop.
    options: { maxPayload: options.limits.maxBodyBytes * 2 },
    // Default preClose closes sockets without a code; ours waits for running queries, then sends 1001.
    preClose: async () => {
      await ws.drain(wsDrainMs);
      await new Promise<void>((resolve) => fastify.websocketServer.close(() => resolve()));
    },
  });

  fastify.decorateRequest('trace', null as unknown as OperationTrace);
  // A request the fast lane read and handed over: its body, read again from what the lane kept.
  if (lane) fastify.addHook('preParsing', async (request, _reply, payload) => lane.bodyOf(request.raw) ?? payload);
  fastify.addHook('onRequest', async (request, reply) => {
    request.trace = {};
    reply.header('x-request-id', request.id);
  });
  fastify.addHook('onResponse', async (request, reply) => {
    if (request.url.startsWith('/health') || request.url === '/metrics' || request.url.startsWith('/assets/')) return;
    const { operationName, operationType, errorCodes } = request.trace ?? {};
    requestLines.info(
      {
        reqId: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        operation: operationName,
        operationType,
        role: request.trace?.role,
        errorCodes: errorCodes?.length ? errorCodes : undefined,
        responseCache: request.trace?.responseCache,
      },
      'request',
    );
  });

  await apollo.start();
  const graphqlHandler = fastifyApolloHandler(apollo, {
    context: async (request: FastifyRequest) => {
      // Throws UNAUTHENTICATED (HTTP 401) for a credential that does not verify; none is anonymous.
      let principal;
      try {
        principal = await principalOf(request.raw);
      } catch (error) {
        // Apollo runs no plugin when the context cannot be built: count and log the refusal here.
        const code = String((error as { extensions?: { code?: unknown } }).extensions?.code ?? 'INTERNAL_SERVER_ERROR');
        request.trace.errorCodes = [code];
        options.metrics.graphqlErrorsTotal.inc({ code });
        throw error;
      }
      request.trace.role = principal?.role ?? 'anonymous';
      return options.createContext({
        requestId: request.id,
        logger: request.log as Logger,
        transport: 'http',
        principal,
        clientAddress: request.ip,
        trace: request.trace,
      });
    },
  });
  const postHandler = responseCache
    ? cachingHandler(graphqlHandler, {
        cache: responseCache,
        principalOf,
        admission: options.admission,
        observer,
        count: countCache,
        missedInLane: lane?.missed,
      })
    : graphqlHandler;
  // The request's span is the active one while Apollo runs it, so phase and resolver spans nest under it.
  const traced = (handler: typeof graphqlHandler): typeof graphqlHandler =>
    function (request, reply) {
      return inSpan('graphql.request', { 'http.request.method': request.method, 'sibyl.request_id': request.id }, async () =>
        handler.call(this, request, reply),
      );
    };
  const tracedHandler = traced(graphqlHandler);
  /**
   * What fastify refuses before Apollo sees the request (a body over MAX_BODY_BYTES, JSON that does not
   * parse, an unsupported content type) is answered in GraphQL's shape, with fastify's status kept, so
   * clients read every refusal from `errors[].extensions.code`. Anything else is ours: masked, logged.
   */
  const errorHandler = (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    let body: { message: string; extensions: Record<string, unknown> };
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const max = options.limits.maxBodyBytes;
      body = {
        message: `Request body larger than ${max} bytes (MAX_BODY_BYTES)`,
        extensions: { code: ErrorCode.BAD_USER_INPUT, limit: 'bodyBytes', max },
      };
    } else if (status < 500) {
      // fastify's messages here describe the request (e.g. "Body is not valid JSON but content-type is set to 'application/json'").
      body = { message: error.message, extensions: { code: 'BAD_REQUEST' } };
    } else {
      request.log.error({ err: error }, 'unexpected error before GraphQL ran');
      body = {
        message: options.isProduction ? 'Internal server error' : error.message,
        extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
      };
    }
    const code = String(body.extensions.code);
    request.trace.errorCodes = [code];
    options.metrics.graphqlErrorsTotal.inc({ code });
    void reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send({ errors: [body] });
  };
  // One path, two protocols: plain GET/POST go to Apollo, an upgrade on GET goes to graphql-ws.
  fastify.route({
    method: 'GET',
    url: '/graphql',
    ...(options.explorer.page === 'sandbox' && { config: { ownContentSecurityPolicy: true } }),
    handler: tracedHandler,
    errorHandler,
    // What Apollo answers before its plugins run (CSRF refusal, a bad credential) and fastify's own
    // refusals carry no Cache-Control from cache-control.ts; an error must never be reused.
    onSend: async (_request, reply, payload) => {
      if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
      return payload;
    },
    wsHandler: (socket, request) => ws.handler(socket, request),
  });
  fastify.route({ method: ['POST', 'OPTIONS'], url: '/graphql', handler: traced(postHandler), errorHandler });

  const explorerServed = options.explorer.page !== 'off';
  if (options.webApp || explorerServed) {
    await fastify.register(
      webApp({ dir: options.webApp?.dir ?? options.explorer.dir, app: Boolean(options.webApp), explorer: explorerServed }, logger),
    );
  }

  await fastify.register(
    healthRoutes({ health: options.health, isProduction: options.isProduction, perSecond: options.healthRateLimitPerSecond ?? 30 }),
  );
  const metricsTokenHash = options.metricsToken ? sha256(options.metricsToken) : undefined;
  fastify.get('/metrics', async (request, reply) => {
    if (metricsTokenHash) {
      const presented = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      // Compared as hashes: equal length, so timingSafeEqual applies and the token's length does not leak.
      if (!presented || !timingSafeEqual(sha256(presented), metricsTokenHash)) {
        reply.code(401).header('www-authenticate', 'Bearer');
        return { error: 'METRICS_TOKEN required: Authorization: Bearer <token>' };
      }
    }
    reply.header('content-type', options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });

  return {
    async listen(host, port) {
      await fastify.listen({ host, port });
      const address = fastify.server.address();
      return { port: typeof address === 'object' && address ? address.port : port };
    },
    async close(timeoutMs) {
      options.health.markDraining();
      lane?.close();
      wsDrainMs = Math.min(2_000, Math.floor(timeoutMs / 2));
      const closing = fastify.close().catch((error: unknown) => logger.warn({ err: error }, 'HTTP listener close failed'));
      if (await settlesWithin(closing, timeoutMs)) return;
      // A peer that never answers the WebSocket close handshake, or a request still running, would hold
      // the process past its budget (ws waits 30 s for a close frame). Stopping must reach the end, so
      // what is left is cut, as a load balancer's deadline would.
      const websockets = fastify.websocketServer.clients.size;
      logger.warn({ timeoutMs, websockets }, 'HTTP drain exceeded its budget; closing the remaining connections');
      for (const client of fastify.websocketServer.clients) client.terminate();
      fastify.server.closeAllConnections();
      if (!(await settlesWithin(closing, 1_000))) logger.warn('HTTP listener still closing after its connections were cut');
    },
  };
}
