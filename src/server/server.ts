import { randomUUID } from 'node:crypto';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyRequest } from 'fastify';
import { NoSchemaIntrospectionCustomRule, specifiedRules, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { ContextFactory, OperationTrace } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import type { Metrics } from '../infra/metrics/metrics.js';
import type { HealthService } from '../modules/health/index.js';
import { createApollo } from './apollo.js';
import { createOperationObserver } from './observe.js';
import { createWsTransport } from './ws.js';

export interface GatewayServerOptions {
  schema: GraphQLSchema;
  createContext: ContextFactory;
  health: HealthService;
  metrics: Metrics;
  logger: Logger;
  isProduction: boolean;
  introspection: boolean;
  landingPage: 'sandbox' | 'production';
  bodyLimitBytes?: number;
  maxSubscriptionsPerConnection?: number;
}

export interface GatewayServer {
  listen(host: string, port: number): Promise<{ port: number }>;
  /**
   * Graceful stop: readiness turns 503, running HTTP requests and WebSocket queries finish (bounded by
   * `timeoutMs`), sockets close with 1001, the listener closes. Does not touch databases or Redis:
   * the composition root closes those after this resolves.
   */
  close(timeoutMs: number): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'fastify' {
  interface FastifyRequest {
    trace: OperationTrace;
  }
}

export async function createGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const { logger } = options;
  const fastify = Fastify({
    loggerInstance: logger,
    // Fastify's two lines per request are replaced by our one (onResponse below), which knows the operation.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'reqId' }),
    requestIdHeader: false,
    // Trust a caller's id only if it looks like one: it ends up in our logs and response headers.
    genReqId: (req) => {
      const header = req.headers['x-request-id'];
      return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    },
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  const validationRules: ValidationRule[] = options.introspection ? [] : [NoSchemaIntrospectionCustomRule];
  const observer = createOperationObserver(options.metrics, logger);
  const apollo = createApollo({
    schema: options.schema,
    isProduction: options.isProduction,
    landingPage: options.landingPage,
    validationRules,
    observer,
    extraPlugins: [fastifyApolloDrainPlugin(fastify)],
  });
  const ws = createWsTransport({
    schema: options.schema,
    createContext: options.createContext,
    logger,
    isProduction: options.isProduction,
    validationRules: [...specifiedRules, ...validationRules],
    observer,
    ...(options.maxSubscriptionsPerConnection !== undefined && { maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection }),
  });

  await fastify.register(websocket, {
    options: { maxPayload: 1024 * 1024 },
    // Default preClose closes sockets without a code; ours waits for running queries, then sends 1001.
    preClose: async () => {
      await ws.drain(2_000);
      await new Promise<void>((resolve) => fastify.websocketServer.close(() => resolve()));
    },
  });

  fastify.decorateRequest('trace', null as unknown as OperationTrace);
  fastify.addHook('onRequest', async (request, reply) => {
    request.trace = {};
    reply.header('x-request-id', request.id);
  });
  fastify.addHook('onResponse', async (request, reply) => {
    if (request.url.startsWith('/health') || request.url === '/metrics') return;
    const { operationName, operationType, errorCodes } = request.trace ?? {};
    request.log.info(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
        operation: operationName,
        operationType,
        errorCodes: errorCodes?.length ? errorCodes : undefined,
      },
      'request',
    );
  });

  await apollo.start();
  const graphqlHandler = fastifyApolloHandler(apollo, {
    context: async (request: FastifyRequest) => {
      return options.createContext({ requestId: request.id, logger: request.log as Logger, transport: 'http', trace: request.trace });
    },
  });
  // One path, two protocols: plain GET/POST go to Apollo, an upgrade on GET goes to graphql-ws.
  fastify.route({ method: 'GET', url: '/graphql', handler: graphqlHandler, wsHandler: (socket, request) => ws.handler(socket, request) });
  fastify.route({ method: ['POST', 'OPTIONS'], url: '/graphql', handler: graphqlHandler });

  fastify.get('/health/live', async () => ({ status: 'ok' }));
  fastify.get('/health/ready', async (_request, reply) => {
    const report = await options.health.report();
    reply.code(report.ready ? 200 : 503);
    return { status: report.status, version: report.version, components: report.components };
  });
  fastify.get('/metrics', async (_request, reply) => {
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
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`HTTP drain took longer than ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([fastify.close(), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
