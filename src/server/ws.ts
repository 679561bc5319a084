import { randomUUID } from 'node:crypto';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import { GraphQLError, getOperationAST, parse, validate, type ExecutionArgs, type GraphQLSchema, type ValidationRule } from 'graphql';
import { CloseCode, makeServer, type ServerOptions } from 'graphql-ws';
import type { Context, ContextFactory } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import { startSpan } from '../infra/tracing/tracing.js';
import { unauthenticated, type Authenticator, type Principal } from '../modules/access/index.js';
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
}

interface Extra {
  readonly socket: WebSocket;
  readonly request: FastifyRequest;
  readonly connectionId: string;
  /** Operation ids running a query or mutation (not subscriptions): what a drain waits for. */
  readonly singleResultOps: Set<string>;
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
      return args;
    },
    onNext(_ctx, _id, _payload, _args, result) {
      if (!result.errors?.length) return;
      return { ...result, errors: result.errors.map((e) => formatGraphQLError(e.toJSON(), options.isProduction)) };
    },
    onError(ctx, id, _payload, errors) {
      const formatted = errors.map((e) => formatGraphQLError(e.toJSON(), options.isProduction));
      finish(ctx.extra, id, formatted);
      return formatted;
    },
    onComplete(ctx, id) {
      finish(ctx.extra, id, undefined);
    },
  };
  const server = makeServer(serverOptions);

  function finish(extra: Extra, id: string, errors: ReturnType<typeof formatGraphQLError>[] | undefined) {
    const started = extra.started.get(id);
    started?.end();
    extra.started.delete(id);
    extra.singleResultOps.delete(id);
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
                // graphql-ws rejects on protocol violations after closing the socket itself with 4400;
                // anything else is ours and must not take the process down.
                logger.warn({ connectionId: extra.connectionId, err: (error as Error).message }, 'websocket message failed');
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
