import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { trace } from '@opentelemetry/api';
import { GraphQLError, type GraphQLSchema, type ValidationRule } from 'graphql';
import type { Context } from '../context/context.js';
import { startSpan } from '../infra/tracing/tracing.js';
import { holdAdmitted, rateHeaders, type Admission } from './admission.js';
import { cacheControlPlugin, type CacheControlOptions } from './cache-control.js';
import type { OperationExecutor } from './compiled-execution.js';
import { errorCodes, formatGraphQLError } from './errors.js';
import { executorGateway } from './executor-gateway.js';
import { explorerLandingPage, type ExplorerOptions } from './explorer.js';
import type { InflightBudget, Lease } from './inflight.js';
import type { OperationObserver } from './observe.js';
import { takeRefusal } from './response-cache/http.js';
import { meterOf } from './response-meter.js';

export interface ApolloOptions {
  schema: GraphQLSchema;
  /**
   * How operations execute (compiled-execution.ts), through Apollo's gateway interface
   * (executor-gateway.ts); without it, Apollo's own graphql-js execution.
   */
  executor?: OperationExecutor | undefined;
  isProduction: boolean;
  /** What GET /graphql shows a browser. */
  explorer: ExplorerOptions;
  validationRules: readonly ValidationRule[];
  observer: OperationObserver;
  admission: Admission;
  /** Parsing stops (QUERY_TOO_COMPLEX) beyond this many tokens. */
  maxTokens: number;
  /** MAX_RESPONSE_ITEMS: list items one response may hold (response-meter.ts). */
  maxResponseItems: number;
  /** The in-flight budget admission uses; long unsized lists reserve their items in it too. */
  inflight?: InflightBudget | undefined;
  /** Cache-Control on GET answers (cache-control.ts). */
  cacheControl: CacheControlOptions;
  extraPlugins?: ApolloServerPlugin<Context>[];
}

export function createApollo(options: ApolloOptions): ApolloServer<Context> {
  return new ApolloServer<Context>({
    ...(options.executor ? { gateway: executorGateway(options.schema, options.executor) } : { schema: options.schema }),
    // Introspection is governed by NoSchemaIntrospectionCustomRule in `validationRules`, shared with the
    // WebSocket transport, so both refuse it with the same message; Apollo's own rule would add a second.
    introspection: true,
    includeStacktraceInErrorResponses: !options.isProduction,
    // Field suggestions ("Did you mean …?") reveal the schema; keep them for developers only.
    hideSchemaDetailsFromClientErrors: options.isProduction,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    // main.ts owns SIGTERM/SIGINT. Apollo's own handlers (installed by default outside NODE_ENV=test)
    // stop Apollo and then re-send the signal to the process, which arrived as a "second signal" and
    // exited before the history writer's final flush: accepted rows were lost at shutdown.
    stopOnTerminationSignals: false,
    validationRules: [...options.validationRules],
    parseOptions: { maxTokens: options.maxTokens },
    formatError: (formatted, error) => formatGraphQLError(formatted, options.isProduction, error),
    plugins: [
      // Apollo installs its cache-control plugin whenever it is not disabled, and it costs on every
      // field; we set no cache hints, so it stays off.
      ApolloServerPluginCacheControlDisabled(),
      // Ours instead: one decision per answer from its root fields, not a hint per field.
      cacheControlPlugin(options.cacheControl),
      explorerLandingPage(options.explorer),
      // Before observePlugin, so what is observed and logged is the response actually sent.
      responseLimitPlugin(options.isProduction),
      observePlugin(options),
      subscriptionsOverWebSocketPlugin(),
      admissionPlugin(options.admission, options.maxResponseItems, options.inflight),
      tracingPlugin(),
      ...(options.extraPlugins ?? []),
    ],
  });
}

/**
 * `graphql.parse`, `graphql.validate`, `graphql.execute` spans, children of the HTTP request's span, and
 * the operation's type and name on the request's span once known (as graphql-ws operations carry them),
 * so a trace search by operation finds HTTP requests too.
 */
function tracingPlugin(): ApolloServerPlugin<Context> {
  const phase = (name: string) => {
    const span = startSpan(name);
    return async (error?: unknown) => {
      if (error) span.recordException(error as Error);
      span.end();
    };
  };
  return {
    async requestDidStart() {
      return {
        async parsingDidStart() {
          return phase('graphql.parse');
        },
        async didResolveOperation({ operation, operationName }) {
          // The active span here is the request's (server.ts makes it active; phase spans are not).
          // Apollo has already set operationName from the resolved operation.
          trace.getActiveSpan()?.setAttributes({
            ...(operation && { 'graphql.operation.type': operation.operation }),
            ...(operationName && { 'graphql.operation.name': operationName }),
          });
        },
        async validationDidStart() {
          const end = phase('graphql.validate');
          return async (errors) => end(errors?.[0]);
        },
        async executionDidStart() {
          const end = phase('graphql.execute');
          return { executionDidEnd: end };
        },
      };
    },
  };
}

/**
 * Introspection role, cost, rate limit and in-flight budget (admission.ts) once the operation is
 * known; RateLimit headers. The in-flight lease is released when the response is sent, which Apollo
 * does however execution ended (errors included).
 */
function admissionPlugin(
  admission: Admission,
  maxResponseItems: number,
  inflight: InflightBudget | undefined,
): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      let lease: Lease | undefined;
      return {
        async didResolveOperation({ document, operation, operationName, request, contextValue, response }) {
          // HTTP never runs a subscription (subscriptionsOverWebSocketPlugin refuses it); Apollo runs the
          // plugins' hooks concurrently, so without this the refused operation would still be charged.
          if (operation?.operation === 'subscription') return;
          // A response-cache hit that admission refused already (response-cache/http.ts): its refusal, not a second charge.
          const refused = takeRefusal(contextValue.trace);
          if (refused) throw refused;
          const admitted = await admission.admit({
            document,
            operationName,
            variables: request.variables,
            principal: contextValue.principal,
            clientAddress: contextValue.clientAddress,
          });
          lease = holdAdmitted(admitted, { subscription: false, context: contextValue }, { maxResponseItems, inflight });
          if (admitted.rate)
            for (const [name, value] of Object.entries(rateHeaders(admitted.rate, false))) response.http.headers.set(name, value);
        },
        async willSendResponse() {
          lease?.release();
        },
      };
    },
  };
}

/**
 * A response past MAX_RESPONSE_ITEMS (or whose list reservation the in-flight budget refused) is one
 * error, QUERY_TOO_COMPLEX (400) or RATE_LIMITED (429), not partial data.
 */
function responseLimitPlugin(isProduction: boolean): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          const meter = meterOf(contextValue);
          if (!meter?.exceeded || response.body.kind !== 'single') return;
          const error = meter.error();
          const http = error.extensions.http as { status?: number; headers?: Map<string, string> } | undefined;
          response.body.singleResult = { errors: [formatGraphQLError(error.toJSON(), isProduction)] };
          response.http.status = http?.status ?? 400;
          for (const [name, value] of http?.headers ?? []) response.http.headers.set(name, value);
        },
      };
    },
  };
}

const SUBSCRIPTION_OVER_HTTP =
  'Subscriptions are served over WebSocket only: connect with graphql-ws (subprotocol graphql-transport-ws) to this same URL';

/**
 * A subscription sent as an HTTP request is the client's mistake, answered 400 BAD_REQUEST naming the
 * right transport. Apollo would otherwise execute a POSTed one like a query (its resolver returns a
 * stream, not a value: an internal error), and refuses a GET one itself, before any plugin's
 * didResolveOperation, with 405 and `Allow: POST`, which would only lead the client to the next wrong
 * request: that answer is rewritten.
 */
function subscriptionsOverWebSocketPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === 'subscription') {
            throw new GraphQLError(SUBSCRIPTION_OVER_HTTP, { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
          }
        },
        async willSendResponse({ request, operation, response }) {
          if (request.http?.method !== 'GET' || operation?.operation !== 'subscription' || response.http.status !== 405) return;
          response.http.status = 400;
          response.http.headers.delete('allow');
          if (response.body.kind === 'single')
            response.body.singleResult.errors = [{ message: SUBSCRIPTION_OVER_HTTP, extensions: { code: 'BAD_REQUEST' } }];
        },
      };
    },
  };
}

function observePlugin(options: ApolloOptions): ApolloServerPlugin<Context> {
  return {
    async requestDidStart({ contextValue }) {
      const started = performance.now();
      const trace = contextValue.trace;
      let operationType = 'unknown';
      return {
        async didResolveOperation({ operation, operationName }) {
          operationType = operation?.operation ?? 'unknown';
          Object.assign(trace, { operationName: operationName ?? undefined, operationType });
        },
        async didEncounterErrors({ errors, contextValue: context }) {
          // Classified as the client will see them (errors.ts): only our own faults are errors with stacks;
          // an uncoded error the policy names a client mistake (or an outage) is a warning without one.
          for (const error of errors) {
            const code = formatGraphQLError(error.toJSON(), false, error).extensions?.code;
            if (code === 'INTERNAL_SERVER_ERROR') {
              context.logger.error({ err: error.originalError ?? error, path: error.path }, 'unexpected error while executing GraphQL');
            } else if (error.extensions?.code === undefined) {
              context.logger.warn({ code, error: error.message, path: error.path }, 'GraphQL request refused');
            }
          }
        },
        async willSendResponse({ response, operationName }) {
          const body = response.body;
          const errors = body.kind === 'single' ? body.singleResult.errors : body.initialResult.errors;
          const codes = errorCodes(errors);
          Object.assign(trace, { errorCodes: codes, operationName: operationName ?? trace.operationName });
          options.observer.observe({
            transport: 'http',
            requestId: contextValue.requestId,
            operationType,
            operationName: operationName ?? undefined,
            seconds: (performance.now() - started) / 1000,
            errorCodes: codes,
          });
        },
      };
    },
  };
}
