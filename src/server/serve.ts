import type { Config } from '../config/index.js';
import type { GraphQLSchema } from 'graphql';
import { createContextFactory, type ContextFactory } from '../context/context.js';
import { createRateLimiter, type RateLimiterOptions } from '../infra/limits/rate-limiter.js';
import type { Logger } from '../infra/logger/logger.js';
import type { Metrics } from '../infra/metrics/metrics.js';
import type { ResponseCache } from '../infra/response-cache/response-cache.js';
import type { AccessModule } from '../modules/access/index.js';
import type { ExplanationService } from '../modules/explanations/index.js';
import type { PointInTimePredictions } from '../modules/predictions/index.js';
import { buildGatewaySchema, type SchemaServices } from '../schema/build-schema.js';
import { createAdmission } from './admission.js';
import { INFLIGHT_MAX_QUEUE, InflightBudget } from './inflight.js';
import type { AnswerCache } from './response-cache/http.js';
import { createGatewayServer, type GatewayServer } from './server.js';
import { loadTrustedDocuments } from './trusted-documents.js';

export interface ServeOptions {
  readonly config: Config;
  /** What the resolvers and the per-request context are built with. */
  readonly services: SchemaServices & { readonly explanations: ExplanationService; readonly pointInTime: PointInTimePredictions };
  readonly access: Pick<AccessModule, 'authenticator' | 'revocations'>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** How long the bars now served stay the newest, bounding GET answers' Cache-Control (feed.ts msUntilNextBar). */
  readonly msUntilNextBar: () => number;
  /** Shares the rate limit between instances; in-process without it. */
  readonly rateLimitStore?: RateLimiterOptions['redis'] | undefined;
  /** RESPONSE_CACHE=on: where whole answers are kept (server/response-cache/). */
  readonly responseCache?: ResponseCache | undefined;
}

export interface Serving {
  readonly server: GatewayServer;
  readonly port: number;
  /** For the start-up log: `100/60s (redis)` or `off`. */
  readonly rateLimit: string;
  /** The executable schema and the per-operation context both transports use (tests execute with them directly). */
  readonly graphql: { readonly schema: GraphQLSchema; readonly createContext: ContextFactory };
}

/** The schema, and the HTTP and WebSocket server with its admission (cost, rate, in-flight budget), listening. */
export async function serveGateway({
  config,
  services,
  access,
  metrics,
  logger,
  rateLimitStore,
  msUntilNextBar,
  responseCache,
}: ServeOptions): Promise<Serving> {
  const schema = await buildGatewaySchema(services);
  const trustedDocuments = config.trustedDocuments ? await loadTrustedDocuments(config.trustedDocuments.file) : undefined;
  if (trustedDocuments) logger.info({ documents: trustedDocuments.size }, 'trusted documents only, for callers below the analyst role');
  const { predictions, pointInTime, explanations, history, health, models } = services;
  const { limits } = config;
  const rateLimiter =
    limits.ratePoints > 0
      ? createRateLimiter({
          points: limits.ratePoints,
          windowSeconds: limits.rateWindowSeconds,
          keyPrefix: config.keyPrefix,
          ...(rateLimitStore ? { redis: rateLimitStore } : {}),
        })
      : undefined;
  const inflight = new InflightBudget(limits.inflightCostBudget, { maxWaitMs: limits.inflightQueueMs, maxQueue: INFLIGHT_MAX_QUEUE });
  const createContext = createContextFactory({ predictions, pointInTime, explanations, history, models });
  const server = await createGatewayServer({
    schema,
    createContext,
    health,
    healthRateLimitPerSecond: config.health.rateLimitPerSecond,
    metrics,
    logger,
    isProduction: config.isProduction,
    introspection: config.graphql.introspection,
    execution: { jit: config.graphql.jit, jitCacheSize: config.graphql.jitCacheSize },
    explorer: config.explorer,
    maxSubscriptionsPerConnection: config.ws.maxSubscriptionsPerConnection,
    authenticator: access.authenticator,
    revocations: access.revocations,
    credentialRecheckMs: config.ws.credentialRecheckMs,
    keepAliveMs: config.ws.keepAliveMs,
    trustProxy: config.trustProxy,
    admission: createAdmission({
      schema,
      maxCost: limits.maxCost,
      maxNodes: limits.maxNodes,
      maxVariablesDepth: limits.maxVariablesDepth,
      maxListSize: config.predictions.maxSymbolsPerRequest,
      rateLimiter,
      inflight,
      authEnabled: config.auth.mode !== 'off',
      trustedDocuments,
    }),
    inflight,
    limits,
    corsOrigins: config.corsOrigins,
    metricsToken: config.metricsToken,
    webApp: config.webApp,
    cacheControl: { maxAgeSeconds: config.httpCacheMaxAgeSeconds, msUntilNextBar },
    responseCache: responseCache as AnswerCache | undefined,
  });
  const { port } = await server.listen(config.host, config.port);
  const rateLimit = rateLimiter ? `${limits.ratePoints}/${limits.rateWindowSeconds}s (${rateLimiter.engine})` : 'off';
  return { server, port, rateLimit, graphql: { schema, createContext } };
}
