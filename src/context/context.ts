import type { Logger } from '../infra/logger/logger.js';
import type { Principal } from '../modules/access/index.js';
import type { ExplanationLoaders, ExplanationService } from '../modules/explanations/index.js';
import type { HistoryLoaders, HistoryQueryService } from '../modules/history/index.js';
import type { ModelsLoaders, ModelsService } from '../modules/models/index.js';
import type { PointInTimeLoader, PointInTimePredictions, PredictionLoaders, PredictionService } from '../modules/predictions/index.js';

/**
 * What every resolver receives, built once per HTTP request or per graphql-ws operation by the same
 * factory, so a field behaves the same over both transports.
 */
export interface Context {
  readonly requestId: string;
  readonly logger: Logger;
  readonly transport: 'http' | 'ws';
  /**
   * Who is calling, authenticated once per HTTP request or WebSocket connection; undefined when
   * anonymous. Resolvers do not check it themselves: `@Authorized(Role.X)` does (see modules/access).
   */
  readonly principal: Principal | undefined;
  /** The caller's IP address (rate limits of anonymous callers). */
  readonly clientAddress: string;
  /** Filled in while the operation runs; the transport logs it when the response is sent. */
  readonly trace: OperationTrace;
  /** Per-request DataLoaders: everything one operation asks for is batched, nothing leaks to the next. */
  readonly loaders: {
    readonly predictions: PredictionLoaders;
    /** Predictions as of past bars (queries with `asOf` or `version`); never recorded in history. */
    readonly pointInTime: PointInTimeLoader;
    readonly explanations: ExplanationLoaders;
    readonly history: HistoryLoaders;
    /** `Strategy.promotions`. */
    readonly models: ModelsLoaders;
  };
}

/** Per-operation facts for the request log. An object (not fields) because Apollo shallow-copies contexts. */
export interface OperationTrace {
  operationName?: string | undefined;
  operationType?: string | undefined;
  errorCodes?: string[] | undefined;
  /** Role of the caller, for the request log (never the credential). */
  role?: string | undefined;
  /**
   * Set by a resolver whose answer must not be kept by the response cache although its fields are
   * cacheable (the reason: predictions from stale bars while the market is failing).
   */
  uncacheable?: string | undefined;
  /** `hit` when the answer came from the response cache (server/response-cache/), for the request log. */
  responseCache?: 'hit' | undefined;
}

export interface ContextInput {
  requestId: string;
  logger: Logger;
  transport: Context['transport'];
  principal: Principal | undefined;
  clientAddress: string;
  trace?: OperationTrace;
}

export type ContextFactory = (input: ContextInput) => Context;

export function createContextFactory(services: {
  predictions: PredictionService;
  pointInTime: PointInTimePredictions;
  explanations: ExplanationService;
  history: HistoryQueryService;
  models: ModelsService;
}): ContextFactory {
  return (input) => {
    const trace = input.trace ?? {};
    return {
      requestId: input.requestId,
      logger: input.logger,
      transport: input.transport,
      principal: input.principal,
      clientAddress: input.clientAddress,
      trace,
      loaders: {
        predictions: services.predictions.createLoaders({ volatile: (reason) => void (trace.uncacheable ??= reason) }),
        pointInTime: services.pointInTime.createLoader(),
        explanations: services.explanations.createLoaders(),
        history: services.history.createLoaders(),
        models: services.models.createLoaders(),
      },
    };
  };
}
