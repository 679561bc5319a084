import { randomUUID } from 'node:crypto';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import {
  GraphQLError,
  createSourceEventStream,
  execute,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  Kind,
  parse,
  validate,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import { CloseCode, makeServer, type ServerOptions } from 'graphql-ws';
import type { Context, ContextFactory } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { inSpan, startRootSpan, startSpan, withSpan } from '../infra/tracing/tracing.js';
import { keysUnavailable, unauthenticated, type Authenticator, type Principal, type Revocations } from '../modules/access/index.js';
import { ErrorCode, badUserInput } from '../shared/errors.js';
import type { Admission } from './admission.js';
import { errorCodes, formatGraphQLError } from './errors.js';
import type { InflightBudget, Lease } from './inflight.js';
import type { OperationObserver } from './observe.js';
import { meterOf, startMeter } from './response-meter.js';
import { ExpirySweep } from './ws.expiry.js';

/** How late, at most, a connection is closed after its credential expires (the sweep's period). */
const EXPIRY_SWEEP_MS = 250;

/** WebSocket close code 1013 (RFC 6455 registry): the server cannot serve this now; retrying later may work. */
const TRY_AGAIN_LATER = 1013;

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
  /** MAX_RESPONSE_ITEMS: list items one query/mutation response may hold (response-meter.ts). */
  maxResponseItems: number;
  /** The in-flight budget admission holds operations in; subscription events take their share of it too. */
  inflight?: InflightBudget | undefined;
  /** Close the socket when `connection_init` has not arrived within this time. */
  connectionInitWaitTimeoutMs?: number;
  /** Ping interval; a client that does not pong within the same time is dropped. */
  keepAliveMs?: number;
  /** Largest accepted message, in bytes. */
  maxMessageBytes?: number;
  /** Most subscriptions one connection may have running; one more is refused with an error message. */
  maxSubscriptionsPerConnection?: number;
  /** Revoked credentials announced by any instance: connections using one are closed at once. */
  revocations?: Pick<Revocations, 'listen'>;
  /** How often open connections re-check their API key (the bound when no announcement arrives). */
  credentialRecheckMs?: number;
}

interface Extra {
  readonly socket: WebSocket;
  readonly request: FastifyRequest;
  readonly connectionId: string;
  /** Operation ids running a query or mutation (not subscriptions): what a drain waits for. */
  readonly singleResultOps: Set<string>;
  /** Operation ids running a subscription: what the per-connection cap counts. */
  readonly subscriptionOps: Set<string>;
  readonly started: Map<string, Started>;
  /** Set once, at connection_init, from `connectionParams.authorization`; undefined: anonymous. */
  principal: Principal | undefined;
  authorization: string | undefined;
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

  /**
   * Credentials are checked at connection_init and again when each operation starts, but a
   * subscription runs on for as long as the socket lives. So a connection whose credential stops
   * holding is closed, with 4403 (Forbidden) and the reason, like one refused at connection_init:
   * a JWT at its `exp` (a timer), an API key when its revocation is announced (at once) or when the
   * periodic re-check finds it revoked (within `credentialRecheckMs`). 4403 rather than 4401: graphql-ws
   * clients treat 4401 as fatal, while after 4403 they may reconnect, and a client whose
   * `connectionParams` is a function fetching a fresh token then carries on.
   */
  const closeForCredential = (extra: Extra, why: string) => {
    if (extra.socket.readyState !== extra.socket.OPEN) return;
    logger.info({ connectionId: extra.connectionId, principal: extra.principal?.id, reason: why }, 'websocket closed: credential no longer valid');
    extra.socket.close(CloseCode.Forbidden, `Forbidden: ${why}`.slice(0, 120));
  };
  /** Closes connections at their credential's expiry (a JWT's `exp`). */
  const expiry = new ExpirySweep<Extra>({
    sweepMs: EXPIRY_SWEEP_MS,
    expire: (extra) => closeForCredential(extra, 'the token of this connection expired; reconnect with a fresh one'),
    onError: (error, extra) => logger.warn({ connectionId: extra.connectionId, err: error }, 'websocket: closing an expired connection failed'),
  });
  const stopListening = options.revocations?.listen((principalId) => {
    for (const extra of connections) {
      if (extra.principal?.id === principalId) closeForCredential(extra, 'the API key of this connection was revoked');
    }
  });
  let rechecking = false;
  const recheck = setInterval(() => {
    if (rechecking) return;
    rechecking = true;
    void recheckKeys()
      .catch((error: unknown) => logger.warn({ err: error }, 'websocket credential re-check failed; trying again on the next tick'))
      .finally(() => (rechecking = false));
  }, options.credentialRecheckMs ?? 30_000);
  recheck.unref();
  /** One lookup per distinct key, however many connections share it (a web app's key may have thousands). */
  async function recheckKeys() {
    const byCredential = new Map<string, Extra[]>();
    for (const extra of connections) {
      if (extra.principal?.via !== 'apikey' || extra.authorization === undefined) continue;
      const list = byCredential.get(extra.authorization);
      if (list) list.push(extra);
      else byCredential.set(extra.authorization, [extra]);
    }
    let unchecked = 0;
    for (const [authorization, list] of byCredential) {
      const state = await options.authenticator.stillValid(list[0]!.principal!, authorization);
      // Only a verdict closes a connection: a key that cannot be checked now (database unreachable)
      // is not a revoked one, and the next re-check asks again.
      if (state === 'unchecked') unchecked++;
      if (state === 'valid' || state === 'unchecked') continue;
      for (const extra of list) closeForCredential(extra, 'the API key of this connection was revoked');
    }
    if (unchecked > 0) logger.warn({ keys: unchecked }, 'websocket credential re-check: keys could not be checked (database unreachable); connections kept open');
  }

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
      // Present means present: `null` is a credential that is not a string, not a missing one.
      const raw = Object.hasOwn(params, 'authorization') ? params.authorization : params.Authorization;
      // A credential that is not a string is a client mistake, never "no credential": running it as
      // anonymous would hide the mistake (and a client meaning a key would silently get less).
      if (raw !== undefined && typeof raw !== 'string') {
        logger.info({ connectionId: ctx.extra.connectionId, ip: ctx.extra.request.ip }, 'websocket refused: connectionParams.authorization is not a string');
        ctx.extra.socket.close(CloseCode.BadRequest, 'Bad request: connectionParams.authorization must be a string ("Bearer <API key or JWT>")');
        return false;
      }
      const authorization = raw;
      try {
        ctx.extra.principal = await options.authenticator.authenticate(authorization);
        ctx.extra.authorization = authorization;
        const expiresAt = ctx.extra.principal?.expiresAt;
        // A socket that closed while authenticating has already run its close handler (unwatch).
        if (expiresAt !== undefined && ctx.extra.socket.readyState === ctx.extra.socket.OPEN) expiry.watch(ctx.extra, expiresAt);
        return true;
      } catch (error) {
        const reason = error instanceof GraphQLError ? error.message : 'Not authenticated';
        // A key that cannot be checked now: 1013 (Try Again Later), which graphql-ws clients retry, not
        // 4403 as if it had been refused.
        if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAVAILABLE) {
          logger.warn({ connectionId: ctx.extra.connectionId, ip: ctx.extra.request.ip }, 'websocket refused: credential cannot be checked right now');
          ctx.extra.socket.close(TRY_AGAIN_LATER, Buffer.from(`UNAVAILABLE: ${reason}`).subarray(0, 120).toString());
          return false;
        }
        logger.info({ connectionId: ctx.extra.connectionId, ip: ctx.extra.request.ip }, 'websocket refused: not authenticated');
        ctx.extra.socket.close(CloseCode.Forbidden, Buffer.from(reason).subarray(0, 120).toString());
        return false;
      }
    },
    async onSubscribe(ctx, id, payload) {
      // The root of this operation's trace; parse, validate and execute (or subscribe) are its children.
      const requestId = `${ctx.extra.connectionId}/${id}`;
      const started: Started = {
        at: performance.now(),
        type: 'unknown',
        name: payload.operationName ?? undefined,
        span: startRootSpan('graphql.ws.operation', { 'sibyl.request_id': requestId }),
        spanEnded: false,
      };
      ctx.extra.started.set(id, started);
      try {
        return await prepare(ctx.extra, id, payload, started);
      } catch (error) {
        // graphql-ws has no hook for this: the socket is closed with 4500 (see onMessage below).
        endSpan(started, error);
        ctx.extra.started.delete(id);
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
  const server = makeServer({
    ...serverOptions,
    // Run inside the operation's span, so what resolvers do (market fetch, features, inference, SQL)
    // joins its trace: graphql-ws calls these from its message handler, outside any span of ours.
    // The admission lease (in-flight budget) is released when execution ends, or once a subscription
    // has started (its events take their own share, see executeEvent). graphql-ws calls one of these
    // for every operation onSubscribe admitted.
    execute: async (args) => {
      try {
        const result = await inOperationSpan(args, 'graphql.execute', () => execute(args));
        const meter = meterOf(args.contextValue as object);
        return meter?.exceeded ? { errors: [meter.error()] } : result;
      } finally {
        leases.get(args)?.release();
        meterOf(args.contextValue as object)?.release();
      }
    },
    subscribe: async (args) => {
      try {
        return await inOperationSpan(args, 'graphql.subscribe', () => subscribeSharingResults(args));
      } finally {
        leases.get(args)?.release();
      }
    },
  });

  /**
   * Parse, validate, check the credential and admit (limits, rate): what onSubscribe does before
   * graphql-ws runs the operation. Returns the execution arguments, or the errors to send.
   */
  async function prepare(extra: Extra, id: string, payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }, started: Started): Promise<ExecutionArgs | readonly GraphQLError[]> {
    const requestId = `${extra.connectionId}/${id}`;
    let document;
    const parsing = startSpan('graphql.parse', {}, started.span);
    try {
      document = parse(payload.query, { maxTokens: options.maxTokens });
    } catch (error) {
      parsing.recordException(error as Error);
      return [withCode(error instanceof GraphQLError ? error : new GraphQLError(String(error)), 'GRAPHQL_PARSE_FAILED')];
    } finally {
      parsing.end();
    }
    const validating = startSpan('graphql.validate', {}, started.span);
    const validationErrors = validate(options.schema, document, options.validationRules);
    validating.end();
    if (validationErrors.length > 0) return validationErrors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return [withCode(new GraphQLError('Could not determine which operation to run: name one with operationName'), 'OPERATION_RESOLUTION_FAILURE')];
    started.type = operation.operation;
    started.name = payload.operationName ?? operation.name?.value;
    started.span.setAttributes({ 'graphql.operation.type': operation.operation, ...(started.name && { 'graphql.operation.name': started.name }) });
    const { principal } = extra;
    // A key revoked (or a token expired) while the socket is open stops working at its next operation.
    const state = principal ? await options.authenticator.stillValid(principal, extra.authorization) : 'valid';
    if (state === 'unchecked') return [keysUnavailable('the API key of this connection cannot be checked right now (the database is unreachable); try again shortly')];
    if (state !== 'valid') {
      return [unauthenticated(state === 'revoked' ? 'the API key of this connection was revoked; reconnect with a valid one' : 'the token of this connection expired; reconnect with a fresh one')];
    }
    let lease: Lease;
    let cost: number;
    try {
      ({ lease, cost } = await options.admission.admit({
        document,
        operationName: payload.operationName,
        variables: payload.variables,
        principal,
        clientAddress: extra.request.ip,
      }));
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
    try {
      return admitted(extra, id, payload, document, operation, principal, requestId, started.span, lease, cost);
    } catch (error) {
      lease.release();
      throw error;
    }
  }

  /** The rest of prepare, once admitted: the lease is released by execute/subscribe, or here on refusal. */
  function admitted(
    extra: Extra,
    id: string,
    payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
    document: ExecutionArgs['document'],
    operation: OperationDefinitionNode,
    principal: Principal | undefined,
    requestId: string,
    span: Span,
    lease: Lease,
    cost: number,
  ): ExecutionArgs | readonly GraphQLError[] {
    if (operation.operation === 'subscription') {
      if (extra.subscriptionOps.size >= maxSubscriptions) {
        lease.release();
        return [badUserInput(`this connection already has ${maxSubscriptions} subscriptions running (the limit); complete one first or open another connection`, { limit: maxSubscriptions })];
      }
      extra.subscriptionOps.add(id);
    } else {
      extra.singleResultOps.add(id);
    }
    const contextValue: Context = options.createContext({
      requestId,
      logger: logger.child({ reqId: requestId }),
      transport: 'ws',
      principal,
      clientAddress: extra.request.ip,
    });
    const args: ExecutionArgs = {
      schema: options.schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue,
    };
    operationSpans.set(args, span);
    leases.set(args, lease);
    if (operation.operation === 'subscription') {
      if (options.inflight) eventShares.set(args, { budget: options.inflight, cost: eventCost(options.schema, operation, payload.variables, cost) });
    } else {
      startMeter(contextValue, options.maxResponseItems, options.inflight);
    }
    // The role is part of the key: field authorization (@Authorized) depends on it and on nothing
    // else of the subscriber's, so subscribers with the same role, selection and variables share.
    if (operation.operation === 'subscription') {
      shareKeys.set(args, `${principal?.role ?? '(anonymous)'}\u0000${payload.operationName ?? ''}\u0000${payload.query}\u0000${JSON.stringify(payload.variables ?? null)}`);
    }
    return args;
  }

  /** The client's view of an error (errors.ts); an unexpected one is logged first, with the operation's id. */
  function format(extra: Extra, id: string, error: GraphQLError) {
    const formatted = formatGraphQLError(error.toJSON(), options.isProduction, error);
    if (formatted.extensions?.code === ErrorCode.INTERNAL_SERVER_ERROR) {
      logger.error({ reqId: `${extra.connectionId}/${id}`, err: error.originalError ?? error, path: error.path }, 'unexpected error while executing GraphQL');
    }
    return formatted;
  }

  function finish(extra: Extra, id: string, errors: ReturnType<typeof formatGraphQLError>[] | undefined) {
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
        expiry.unwatch(extra);
        connections.delete(extra);
        logger.debug({ connectionId: extra.connectionId, code }, 'websocket closed');
        void closed(code, reason.toString());
      });
    },
    async drain(timeoutMs) {
      stopListening?.();
      clearInterval(recheck);
      expiry.close();
      const deadline = Date.now() + timeoutMs;
      while ([...connections].some((c) => c.singleResultOps.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const { socket } of connections) socket.close(1001, 'Server shutting down');
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

/** The in-flight lease of each admitted operation's execution arguments (set in onSubscribe). */
const leases = new WeakMap<ExecutionArgs, Lease>();

/** What one event of a subscription holds of the in-flight budget while it executes. */
const eventShares = new WeakMap<ExecutionArgs, { budget: InflightBudget; cost: number }>();

/**
 * The cost of executing one event: a subscription's cost counts its selection once per symbol it
 * listens to, an event executes it for one prediction.
 */
function eventCost(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Record<string, unknown> | null | undefined, cost: number): number {
  const root = operation.selectionSet.selections[0];
  const field = root?.kind === Kind.FIELD ? schema.getSubscriptionType()?.getFields()[root.name.value] : undefined;
  if (!root || root.kind !== Kind.FIELD || !field) return cost;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 });
  if (coerced.errors) return cost;
  const symbols = getArgumentValues(field, root, coerced.coerced).symbols;
  return Array.isArray(symbols) && symbols.length > 1 ? Math.ceil(cost / symbols.length) : cost;
}

/** The `graphql.ws.operation` span of each operation's execution arguments (set in onSubscribe). */
const operationSpans = new WeakMap<ExecutionArgs, Span>();

/** Runs `fn` as a child span `name` of the operation's span, active for everything `fn` awaits. */
async function inOperationSpan<T>(args: ExecutionArgs, name: string, fn: () => T | Promise<T>): Promise<T> {
  const parent = operationSpans.get(args);
  if (!parent) return fn();
  return withSpan(parent, () => inSpan(name, {}, async () => fn()));
}

/**
 * One event of a subscription, executed: its own trace (`graphql.ws.event` → `graphql.execute`), linked
 * to the subscription's `graphql.ws.operation`. Subscribers sharing the execution share this trace; it
 * links to the subscription that ran it.
 */
async function executeEvent(args: ExecutionArgs, rootValue: unknown): Promise<ExecutionResult> {
  const operation = operationSpans.get(args);
  const share = eventShares.get(args);
  // Events are owed to the subscriber: they wait for room in the budget, never refused.
  const lease = share ? await share.budget.acquire(share.cost, 'unbounded') : undefined;
  const span = startRootSpan('graphql.ws.event', { 'graphql.operation.type': 'subscription' }, operation ? [{ context: operation.spanContext() }] : []);
  try {
    return await withSpan(span, () => inSpan('graphql.execute', {}, async () => execute({ ...args, rootValue })));
  } finally {
    span.end();
    lease?.release();
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** A stream whose first `next()` throws `error` (graphql-ws turns that into an `error` message). */
function failingStream(error: GraphQLError): AsyncGenerator<ExecutionResult> {
  // eslint-disable-next-line require-yield -- a stream that fails on its first pull, by design
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
    if (key === undefined || typeof payload !== 'object' || payload === null) return executeEvent(args, payload);
    let results = sharedResults.get(payload);
    if (!results) sharedResults.set(payload, (results = new Map()));
    let result = results.get(key);
    if (!result) results.set(key, (result = executeEvent(args, payload)));
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
