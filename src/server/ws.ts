import { randomUUID } from 'node:crypto';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import {
  GraphQLError,
  createSourceEventStream,
  execute,
  getOperationAST,
  parse,
  validate,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import { CloseCode, makeServer, type ServerOptions } from 'graphql-ws';
import type { Context, ContextFactory } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import { startSpan } from '../infra/tracing/tracing.js';
import { unauthenticated, type Authenticator, type Principal } from '../modules/access/index.js';
import { badUserInput } from '../shared/errors.js';
import type { Admission } from './admission.js';
import { errorCodes, formatGraphQLError } from './errors.js';
import type { OperationObserver } from './observe.js';

/**
 * graphql-ws over @fastify/websocket. graphql-ws ships a starter adapter; ours differs where a
 * production gateway needs it: errors go through the same formatter and validation rules as HTTP
 * (graphql-ws applies none of Apollo's), messages are size-capped, logs go to pino, and shutdown
 * lets running queries finish before closing sockets with 1001 (Going Away).
 */
export interface WsOptions {
  schema: GraphQLSchema;
  createContext: ContextFactory;
  logger: Logger;
  isProduction: boolean;
  validationRules: readonly ValidationRule[];
  observer: OperationObserver;
  authenticator: Authenticator;
  admission: Admission;
  /** Parsing stops (QUERY_TOO_COMPLEX) beyond this many tokens. */
  maxTokens: number;
  /** Close the socket when `connection_init` has not arrived within this time. */
  connectionInitWaitTimeoutMs?: number;
  /** Ping interval; a client that does not pong within the same time is dropped. */
  keepAliveMs?: number;
  /** Largest accepted message, in bytes. */
  maxMessageBytes?: number;
  /** Most subscriptions one connection may have running; one more is refused with an error message. */
  maxSubscriptionsPerConnection?: number;
}

interface Extra {
  readonly socket: WebSocket;
  readonly request: FastifyRequest;
  readonly connectionId: string;
  /** Operation ids running a query or mutation (not subscriptions): what a drain waits for. */
  readonly singleResultOps: Set<string>;
  /** Operation ids running a subscription: what the per-connection cap counts. */
  readonly subscriptionOps: Set<string>;
  readonly started: Map<string, { at: number; type: string; name: string | undefined; end: () => void }>;
  /** Set once, at connection_init, from `connectionParams.authorization`; undefined: anonymous. */
  principal: Principal | undefined;
  authorization: string | undefined;
}

export interface WsTransport {
  handler(socket: WebSocket, request: FastifyRequest): void;
  /** Wait (up to `timeoutMs`) for running queries/mutations, then close every socket with 1001. */
  drain(timeoutMs: number): Promise<void>;
  readonly connectionCount: number;
}

/** The codes Apollo gives the same failures over HTTP, so clients see one vocabulary. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

export function createWsTransport(options: WsOptions): WsTransport {
  const logger = options.logger.child({ component: 'ws' });
  const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024;
  const keepAliveMs = options.keepAliveMs ?? 12_000;
  const maxSubscriptions = options.maxSubscriptionsPerConnection ?? 20;
  const connections = new Set<Extra>();

  const serverOptions: ServerOptions<Record<string, unknown> | undefined, Extra> = {
    schema: options.schema,
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 5_000,
    /**
     * Authenticates once per connection, like a browser would send its header once per HTTP request:
     * `connectionParams: { authorization: "Bearer <API key or JWT>" }`. Without one the connection is
     * anonymous (fields that need a role answer UNAUTHENTICATED, as over HTTP); with one that does not
     * verify, the socket is closed with 4403 and the reason.
     */
    async onConnect(ctx) {
      const params = ctx.connectionParams ?? {};
      const raw = params.authorization ?? params.Authorization;
      const authorization = typeof raw === 'string' ? raw : undefined;
      try {
        ctx.extra.principal = await options.authenticator.authenticate(authorization);
        ctx.extra.authorization = authorization;
        return true;
      } catch (error) {
        const reason = error instanceof GraphQLError ? error.message : 'Not authenticated';
        logger.info({ connectionId: ctx.extra.connectionId, ip: ctx.extra.request.ip }, 'websocket refused: not authenticated');
        ctx.extra.socket.close(CloseCode.Forbidden, Buffer.from(reason).subarray(0, 120).toString());
        return false;
      }
    },
    async onSubscribe(ctx, id, payload) {
      let document;
      try {
        document = parse(payload.query, { maxTokens: options.maxTokens });
      } catch (error) {
        return [withCode(error instanceof GraphQLError ? error : new GraphQLError(String(error)), 'GRAPHQL_PARSE_FAILED')];
      }
      const validationErrors = validate(options.schema, document, options.validationRules);
      if (validationErrors.length > 0) return validationErrors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [new GraphQLError('Could not determine which operation to run: name one with operationName')];
      const { principal } = ctx.extra;
      // A key revoked while the socket is open stops working at its next operation.
      if (principal && !(await options.authenticator.stillValid(principal, ctx.extra.authorization))) {
        return [unauthenticated('the API key of this connection was revoked; reconnect with a valid one')];
      }
      try {
        await options.admission.admit({
          document,
          operationName: payload.operationName,
          variables: payload.variables,
          principal,
          clientAddress: ctx.extra.request.ip,
        });
      } catch (error) {
        if (error instanceof GraphQLError) return [error];
        throw error;
      }
      if (operation.operation === 'subscription') {
        if (ctx.extra.subscriptionOps.size >= maxSubscriptions) {
          return [badUserInput(`this connection already has ${maxSubscriptions} subscriptions running (the limit); complete one first or open another connection`, { limit: maxSubscriptions })];
        }
        ctx.extra.subscriptionOps.add(id);
      }
      const span = startSpan('graphql.ws.operation', { 'graphql.operation.type': operation.operation, 'sibyl.request_id': `${ctx.extra.connectionId}/${id}` });
      ctx.extra.started.set(id, { at: performance.now(), type: operation.operation, name: payload.operationName ?? operation.name?.value, end: () => span.end() });
      if (operation.operation !== 'subscription') ctx.extra.singleResultOps.add(id);
      const contextValue: Context = options.createContext({
        requestId: `${ctx.extra.connectionId}/${id}`,
        logger: logger.child({ reqId: `${ctx.extra.connectionId}/${id}` }),
        transport: 'ws',
        principal,
        clientAddress: ctx.extra.request.ip,
      });
      const args: ExecutionArgs = {
        schema: options.schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue,
      };
      // The role is part of the key: field authorization (@Authorized) depends on it and on nothing
      // else of the subscriber's, so subscribers with the same role, selection and variables share.
      if (operation.operation === 'subscription') {
        shareKeys.set(args, `${principal?.role ?? '(anonymous)'}\u0000${payload.operationName ?? ''}\u0000${payload.query}\u0000${JSON.stringify(payload.variables ?? null)}`);
      }
      return args;
    },
    onOperation(_ctx, _id, _payload, args, result) {
      // graphql-js reports a subscription refused at its start (bad arguments, unknown symbol) as one
      // result, which graphql-ws would send as `next` then `complete`, as if it were data. Refusals are
      // `error` messages in the protocol: handing back a stream that fails at once makes graphql-ws
      // send one, carrying the error's message and extensions (its code).
      const outcome = result as ExecutionResult | AsyncIterable<unknown>; // graphql-ws has awaited it
      if (isAsyncIterable(outcome) || !outcome.errors?.length || outcome.data) return;
      if (getOperationAST(args.document, args.operationName)?.operation !== 'subscription') return;
      return failingStream(outcome.errors[0]!);
    },
    onNext(_ctx, _id, _payload, _args, result) {
      if (!result.errors?.length) return;
      return { ...result, errors: result.errors.map((e) => formatGraphQLError(e.toJSON(), options.isProduction, e)) };
    },
    onError(ctx, id, _payload, errors) {
      const formatted = errors.map((e) => formatGraphQLError(e.toJSON(), options.isProduction, e));
      finish(ctx.extra, id, formatted);
      return formatted;
    },
    onComplete(ctx, id) {
      finish(ctx.extra, id, undefined);
    },
  };
  const server = makeServer({ ...serverOptions, subscribe: subscribeSharingResults });

  function finish(extra: Extra, id: string, errors: ReturnType<typeof formatGraphQLError>[] | undefined) {
    const started = extra.started.get(id);
    // A stream that failed was observed by onError; graphql-ws then also calls onComplete.
    if (!started && errors === undefined) return;
    started?.end();
    extra.started.delete(id);
    extra.singleResultOps.delete(id);
    extra.subscriptionOps.delete(id);
    const codes = errorCodes(errors);
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

  return {
    get connectionCount() {
      return connections.size;
    },
    handler(socket, request) {
      const extra: Extra = {
        socket,
        request,
        connectionId: randomUUID().slice(0, 8),
        singleResultOps: new Set(),
        subscriptionOps: new Set(),
        started: new Map(),
        principal: undefined,
        authorization: undefined,
      };
      connections.add(extra);
      logger.debug({ connectionId: extra.connectionId, ip: request.ip }, 'websocket opened');

      let pongTimer: NodeJS.Timeout | undefined;
      const pinger = setInterval(() => {
        if (socket.readyState !== socket.OPEN) return;
        pongTimer = setTimeout(() => socket.terminate(), keepAliveMs);
        socket.ping();
      }, keepAliveMs);
      socket.on('pong', () => clearTimeout(pongTimer));

      socket.on('error', (error) => {
        logger.warn({ connectionId: extra.connectionId, err: error.message }, 'websocket error');
        socket.close(CloseCode.InternalServerError, 'Internal server error');
      });

      const closed = server.opened(
        {
          protocol: socket.protocol,
          send: (data) =>
            new Promise<void>((resolve, reject) => {
              if (socket.readyState !== socket.OPEN) return resolve();
              socket.send(data, (err) => (err ? reject(err) : resolve()));
            }),
          close: (code, reason) => socket.close(code, reason),
          onMessage: (cb) =>
            socket.on('message', async (data: Buffer, isBinary: boolean) => {
              if (isBinary || data.length > maxMessageBytes) {
                socket.close(CloseCode.BadRequest, isBinary ? 'Binary messages are not supported' : `Message larger than ${maxMessageBytes} bytes`);
                return;
              }
              try {
                await cb(data.toString('utf8'));
              } catch (error) {
                const message = (error as Error).message;
                // graphql-ws closes with 4400 itself for most protocol violations, but a client sending a
                // server-only message type (connection_ack, next, error…) makes it throw instead. That is
                // the client's mistake (found by the ws fuzz suite), so it gets 4400 and its reason.
                if (/^Unexpected message of type \S{1,40} received$/.test(message)) {
                  if (socket.readyState === socket.OPEN) socket.close(CloseCode.BadRequest, message);
                  return;
                }
                // Anything else is ours and must not take the process down.
                logger.warn({ connectionId: extra.connectionId, err: message }, 'websocket message failed');
                if (socket.readyState === socket.OPEN) socket.close(CloseCode.InternalServerError, 'Internal server error');
              }
            }),
        },
        extra,
      );

      socket.once('close', (code: number, reason: Buffer) => {
        clearInterval(pinger);
        clearTimeout(pongTimer);
        connections.delete(extra);
        logger.debug({ connectionId: extra.connectionId, code }, 'websocket closed');
        void closed(code, reason.toString());
      });
    },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while ([...connections].some((c) => c.singleResultOps.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const { socket } of connections) socket.close(1001, 'Server shutting down');
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** A stream whose first `next()` throws `error` (graphql-ws turns that into an `error` message). */
function failingStream(error: GraphQLError): AsyncGenerator<ExecutionResult> {
  return (async function* () {
    throw error;
  })();
}

/**
 * Subscription operations whose events may share one execution: same role, query text, operation name
 * and variables (set by onSubscribe). Keyed by the ExecutionArgs object graphql-ws hands to `subscribe`.
 */
const shareKeys = new WeakMap<ExecutionArgs, string>();
/** Per event payload (the same object for every subscriber of it): results by share key. */
const sharedResults = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();

/**
 * graphql-js's `subscribe`, except that one event delivered to many subscriptions with the same
 * selection is executed once, not once per subscriber: ten thousand subscribers of a symbol cost one
 * execution per new bar, and each socket sends the same result. graphql-js would run the selection for
 * every subscriber. Sound because the result depends only on the event, the document and the
 * variables and the subscriber's role (field authorization, the one thing resolvers take from the
 * per-subscriber context, depends on the role only). Anything per-subscriber added to resolvers later
 * must join the share key.
 */
async function subscribeSharingResults(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!isAsyncIterable(source)) return source as ExecutionResult;
  const key = shareKeys.get(args);
  const run = (payload: unknown): ExecutionResult | Promise<ExecutionResult> => {
    if (key === undefined || typeof payload !== 'object' || payload === null) return execute({ ...args, rootValue: payload });
    let results = sharedResults.get(payload);
    if (!results) sharedResults.set(payload, (results = new Map()));
    let result = results.get(key);
    if (!result) results.set(key, (result = execute({ ...args, rootValue: payload })));
    return result;
  };
  const iterator = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  const mapped: AsyncGenerator<ExecutionResult> = {
    async next() {
      const step = await iterator.next();
      return step.done ? { done: true, value: undefined } : { done: false, value: await run(step.value) };
    },
    async return() {
      await iterator.return?.();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      await iterator.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncGenerator<ExecutionResult>;
  return mapped;
}
