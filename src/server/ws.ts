import { randomUUID } from 'node:crypto';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyRequest } from 'fastify';
import type { GraphQLSchema, ValidationRule } from 'graphql';
import { CloseCode, makeServer } from 'graphql-ws';
import type { ContextFactory } from '../context/context.js';
import type { Logger } from '../infra/logger/logger.js';
import type { Authenticator, Revocations } from '../modules/access/index.js';
import type { Admission } from './admission.js';
import type { OperationExecutor } from './compiled-execution.js';
import type { InflightBudget } from './inflight.js';
import type { OperationObserver } from './observe.js';
import { CredentialWatcher } from './ws.credentials.js';
import { SharedExecution } from './ws.execution.js';
import { wsHooks, type WsConnection } from './ws.hooks.js';
import { createWsPrepare } from './ws.prepare.js';

/**
 * graphql-ws over @fastify/websocket. graphql-ws ships a starter adapter; ours differs where a
 * production gateway needs it: errors go through the same formatter and validation rules as HTTP
 * (graphql-ws applies none of Apollo's), messages are size-capped, logs go to pino, and shutdown
 * lets running queries finish before closing sockets with 1001 (Going Away).
 *
 * The parts, along graphql-ws's own seams: this file is the adapter (socket ↔ `makeServer`, keep-alive,
 * close codes, drain); ws.hooks.ts the server hooks (trace, errors, observation); ws.credentials.ts the
 * credential lifecycle; ws.prepare.ts parse/validate/admit; ws.execution.ts execute/subscribe with
 * per-event result sharing.
 */
export interface WsOptions {
  schema: GraphQLSchema;
  createContext: ContextFactory;
  logger: Logger;
  isProduction: boolean;
  validationRules: readonly ValidationRule[];
  /** How queries and mutations execute (compiled-execution.ts); without it graphql-js. Subscriptions always use graphql-js. */
  executor?: OperationExecutor | undefined;
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

export interface WsTransport {
  handler(socket: WebSocket, request: FastifyRequest): void;
  /** Wait (up to `timeoutMs`) for running queries/mutations, then close every socket with 1001. */
  drain(timeoutMs: number): Promise<void>;
  readonly connectionCount: number;
}

/**
 * Per socket, in order: `handler` (fastify's upgrade) registers the connection and hands graphql-ws a
 * socket whose messages it reads (binary or oversized ones close with 4400 before graphql-ws sees them);
 * on `close` the keep-alive stops, the credential watcher forgets the connection and graphql-ws is told
 * (it ends the connection's operations). `drain` (shutdown) stops the credential watcher first, so no
 * socket is closed for its credential while the server is closing them all.
 */
export function createWsTransport(options: WsOptions): WsTransport {
  const logger = options.logger.child({ component: 'ws' });
  const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024;
  const keepAliveMs = options.keepAliveMs ?? 12_000;
  const connections = new Set<WsConnection>();
  const credentials = new CredentialWatcher<WsConnection>({
    authenticator: options.authenticator,
    logger,
    revocations: options.revocations,
    recheckMs: options.credentialRecheckMs,
  });
  const execution = new SharedExecution(options.executor);
  const prepare = createWsPrepare({
    schema: options.schema,
    validationRules: options.validationRules,
    admission: options.admission,
    maxTokens: options.maxTokens,
    maxSubscriptions: options.maxSubscriptionsPerConnection ?? 20,
  });
  const server = makeServer<Record<string, unknown> | undefined, WsConnection>({
    schema: options.schema,
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 5_000,
    ...wsHooks({ ...options, logger, credentials, prepare, execution }),
    execute: execution.execute,
    subscribe: execution.subscribe,
  });

  return {
    get connectionCount() {
      return connections.size;
    },
    handler(socket, request) {
      const extra: WsConnection = {
        connectionId: randomUUID().slice(0, 8),
        clientAddress: request.ip,
        isOpen: () => socket.readyState === socket.OPEN,
        close: (code, reason) => socket.close(code, reason),
        singleResultOps: new Set(),
        subscriptionOps: new Set(),
        started: new Map(),
        principal: undefined,
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
                socket.close(
                  CloseCode.BadRequest,
                  isBinary ? 'Binary messages are not supported' : `Message larger than ${maxMessageBytes} bytes`,
                );
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
        credentials.forget(extra);
        connections.delete(extra);
        logger.debug({ connectionId: extra.connectionId, code }, 'websocket closed');
        void closed(code, reason.toString());
      });
    },
    async drain(timeoutMs) {
      credentials.close();
      const deadline = Date.now() + timeoutMs;
      while ([...connections].some((c) => c.singleResultOps.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const connection of connections) connection.close(1001, 'Server shutting down');
    },
  };
}
