import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { type GraphQLError, getOperationAST, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import type { ServerOptions } from 'graphql-ws';
import type { Context, ContextFactory } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import { startRootSpan } from '../infra/tracing/tracing.js';
import type { Principal } from '../modules/access/index.js';
import { ErrorCode } from '../shared/errors.js';
import { holdAdmitted } from './admission.js';
import { errorCodes, formatGraphQLError } from './errors.js';
import type { InflightBudget } from './inflight.js';
import type { OperationObserver } from './observe.js';
import type { CredentialHolder, CredentialWatcher } from './ws.credentials.js';
import { eventCost, isAsyncIterable, shareKey, type SharedExecution } from './ws.execution.js';
import type { PrepareRequest, Prepared } from './ws.prepare.js';

/** graphql-ws's `extra`: one per socket, made by the adapter (ws.ts). */
export interface WsConnection extends CredentialHolder {
  /** Operation ids running a query or mutation (not subscriptions): what a drain waits for. */
  readonly singleResultOps: Set<string>;
  /** Operation ids running a subscription: what the per-connection cap counts. */
  readonly subscriptionOps: Set<string>;
  readonly started: Map<string, Started>;
  /** Set once, at connection_init; undefined: anonymous. */
  principal: Principal | undefined;
}

/** An operation between `subscribe` and its end: for the metrics, the log line and its trace. */
interface Started {
  readonly at: number;
  type: string;
  name: string | undefined;
  /** `graphql.ws.operation`, the root of the operation's trace. */
  readonly span: Span;
  spanEnded: boolean;
}

export interface WsHooksOptions {
  schema: GraphQLSchema;
  createContext: ContextFactory;
  logger: Logger;
  isProduction: boolean;
  observer: OperationObserver;
  maxResponseItems: number;
  inflight?: InflightBudget | undefined;
  credentials: CredentialWatcher<WsConnection>;
  prepare: (request: PrepareRequest) => Promise<Prepared | readonly GraphQLError[]>;
  execution: SharedExecution;
}

type Hooks = Pick<
  ServerOptions<Record<string, unknown> | undefined, WsConnection>,
  'onConnect' | 'onSubscribe' | 'onOperation' | 'onNext' | 'onError' | 'onComplete'
>;

/**
 * graphql-ws's server hooks, in the order graphql-ws calls them for one connection:
 *
 * - `onConnect` (connection_init): the credential watcher authenticates; false closes (it has set the code).
 * - `onSubscribe` (each `subscribe` message): starts the operation's trace, prepares it (ws.prepare.ts),
 *   builds its context and registers its run for `execute`/`subscribe` (ws.execution.ts). Errors returned
 *   are sent as one `error` message (then `onError`); a throw closes the socket with 4500.
 * - `onOperation`: once execute/subscribe has answered; a subscription refused at its start becomes an
 *   `error` message rather than `next` + `complete`.
 * - `onNext` per result, `onError` once for a failed operation, `onComplete` at its end (also after
 *   `onError`, and when the socket closes): errors pass through the same formatter as HTTP (errors.ts),
 *   and the operation is observed (metrics, log line) and its span ended exactly once.
 */
export function wsHooks(options: WsHooksOptions): Hooks {
  const { logger } = options;

  /** The client's view of an error (errors.ts); an unexpected one is logged first, with the operation's id. */
  function format(extra: WsConnection, id: string, error: GraphQLError) {
    const formatted = formatGraphQLError(error.toJSON(), options.isProduction, error);
    if (formatted.extensions?.code === ErrorCode.INTERNAL_SERVER_ERROR) {
      logger.error(
        { reqId: `${extra.connectionId}/${id}`, err: error.originalError ?? error, path: error.path },
        'unexpected error while executing GraphQL',
      );
    }
    return formatted;
  }

  function finish(extra: WsConnection, id: string, errors: ReturnType<typeof formatGraphQLError>[] | undefined) {
    const started = extra.started.get(id);
    // A stream that failed was observed by onError; graphql-ws then also calls onComplete.
    if (!started && errors === undefined) return;
    const codes = errorCodes(errors);
    if (started) {
      if (codes.length > 0) started.span.setAttribute('sibyl.error_codes', codes);
      endSpan(started, codes.includes(ErrorCode.INTERNAL_SERVER_ERROR) ? new Error('internal server error') : undefined);
    }
    extra.started.delete(id);
    extra.singleResultOps.delete(id);
    extra.subscriptionOps.delete(id);
    options.observer.observe({
      transport: 'ws',
      requestId: `${extra.connectionId}/${id}`,
      operationType: started?.type ?? 'unknown',
      operationName: started?.name,
      seconds: started ? (performance.now() - started.at) / 1000 : 0,
      errorCodes: codes,
      role: extra.principal?.role ?? 'anonymous',
    });
  }

  /** Once admitted: the context and execution arguments. The lease is the execution's from here on. */
  function admitted(extra: WsConnection, id: string, payload: PrepareRequest['payload'], prepared: Prepared, span: Span): ExecutionArgs {
    const { document, operation, lease, cost } = prepared;
    const requestId = `${extra.connectionId}/${id}`;
    const subscription = operation.operation === 'subscription';
    (subscription ? extra.subscriptionOps : extra.singleResultOps).add(id);
    const contextValue: Context = options.createContext({
      requestId,
      logger: logger.child({ reqId: requestId }),
      transport: 'ws',
      principal: extra.principal,
      clientAddress: extra.clientAddress,
    });
    const args: ExecutionArgs = {
      schema: options.schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue,
    };
    options.execution.register(args, {
      span,
      lease: holdAdmitted({ lease }, { subscription, context: contextValue }, options),
      ...(subscription && {
        eventShare: options.inflight && { budget: options.inflight, cost: eventCost(options.schema, operation, payload.variables, cost) },
        shareKey: shareKey(extra.principal, payload),
      }),
    });
    return args;
  }

  return {
    async onConnect(ctx) {
      const connected = await options.credentials.connect(ctx.extra, ctx.connectionParams);
      if (connected.accepted) ctx.extra.principal = connected.principal;
      return connected.accepted;
    },
    async onSubscribe(ctx, id, payload) {
      const { extra } = ctx;
      // The root of this operation's trace; parse, validate and execute (or subscribe) are its children.
      const started: Started = {
        at: performance.now(),
        type: 'unknown',
        name: payload.operationName ?? undefined,
        span: startRootSpan('graphql.ws.operation', { 'sibyl.request_id': `${extra.connectionId}/${id}` }),
        spanEnded: false,
      };
      extra.started.set(id, started);
      try {
        const prepared = await options.prepare({
          payload,
          span: started.span,
          principal: extra.principal,
          clientAddress: extra.clientAddress,
          subscriptionsRunning: extra.subscriptionOps.size,
          onResolved(operation, name) {
            started.type = operation.operation;
            started.name = name;
            started.span.setAttributes({ 'graphql.operation.type': operation.operation, ...(name && { 'graphql.operation.name': name }) });
          },
          checkCredential: () => options.credentials.checkOperation(extra),
        });
        if (!('lease' in prepared)) return prepared;
        try {
          return admitted(extra, id, payload, prepared, started.span);
        } catch (error) {
          prepared.lease.release();
          throw error;
        }
      } catch (error) {
        // graphql-ws has no hook for this: the socket is closed with 4500 (see the adapter's onMessage).
        endSpan(started, error);
        extra.started.delete(id);
        throw error;
      }
    },
    onOperation(ctx, id, _payload, args, result) {
      // A subscription's operation span covers its start only: it may then run for hours, and a span is
      // exported when it ends. Each event it delivers is traced on its own (graphql.ws.event).
      const started = ctx.extra.started.get(id);
      if (started?.type === 'subscription') endSpan(started, isAsyncIterable(result) ? undefined : (result as ExecutionResult).errors?.[0]);
      // graphql-js reports a subscription refused at its start (bad arguments, unknown symbol) as one
      // result, which graphql-ws would send as `next` then `complete`, as if it were data. Refusals are
      // `error` messages in the protocol: handing back a stream that fails at once makes graphql-ws
      // send one, carrying the error's message and extensions (its code).
      const outcome = result as ExecutionResult | AsyncIterable<unknown>; // graphql-ws has awaited it
      if (isAsyncIterable(outcome) || !outcome.errors?.length || outcome.data) return;
      if (getOperationAST(args.document, args.operationName)?.operation !== 'subscription') return;
      return failingStream(outcome.errors[0]!);
    },
    onNext(ctx, id, _payload, _args, result) {
      if (!result.errors?.length) return;
      return { ...result, errors: result.errors.map((e) => format(ctx.extra, id, e)) };
    },
    onError(ctx, id, _payload, errors) {
      const formatted = errors.map((e) => format(ctx.extra, id, e));
      finish(ctx.extra, id, formatted);
      return formatted;
    },
    onComplete(ctx, id) {
      finish(ctx.extra, id, undefined);
    },
  };
}

/** Ends an operation's span once (a subscription's ends when it starts; its finish must not end it again). */
function endSpan(started: Started, error?: unknown): void {
  if (started.spanEnded) return;
  started.spanEnded = true;
  if (error) {
    started.span.recordException(error instanceof Error ? error : new Error(String((error as { message?: unknown }).message ?? error)));
    started.span.setStatus({ code: SpanStatusCode.ERROR });
  }
  started.span.end();
}

/** A stream whose first `next()` throws `error` (graphql-ws turns that into an `error` message). */
function failingStream(error: GraphQLError): AsyncGenerator<ExecutionResult> {
  // eslint-disable-next-line require-yield -- a stream that fails on its first pull, by design
  return (async function* () {
    throw error;
  })();
}
