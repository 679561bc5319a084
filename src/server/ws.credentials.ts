import { GraphQLError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import type { Logger } from '../infra/logger/logger.js';
import { keysUnavailable, unauthenticated, type Authenticator, type Principal, type Revocations } from '../modules/access/index.js';
import { ErrorCode } from '../shared/errors.js';
import { ExpirySweep } from './ws.expiry.js';

/** WebSocket close code 1013 (RFC 6455 registry): the server cannot serve this now; retrying later may work. */
export const TRY_AGAIN_LATER = 1013;

/** How late, at most, a connection is closed after its credential expires (the sweep's period). */
const EXPIRY_SWEEP_MS = 250;

/** What the watcher needs of a connection: no socket, so it can be tested without one. */
export interface CredentialHolder {
  readonly connectionId: string;
  readonly clientAddress: string;
  isOpen(): boolean;
  close(code: number, reason: string): void;
}

export interface CredentialWatcherOptions {
  authenticator: Pick<Authenticator, 'authenticate' | 'stillValid'>;
  logger: Logger;
  /** Revoked credentials announced by any instance: connections using one are closed at once. */
  revocations?: Pick<Revocations, 'listen'> | undefined;
  /** How often open connections re-check their API key (the bound when no announcement arrives). */
  recheckMs?: number | undefined;
  expirySweepMs?: number;
  /** The clock expiry is judged by (tests). */
  now?: () => number;
}

export type Connected = { readonly accepted: true; readonly principal: Principal | undefined } | { readonly accepted: false };
const REFUSED: Connected = { accepted: false };

interface Held {
  readonly principal: Principal | undefined;
  readonly authorization: string | undefined;
}

/**
 * The credential lifecycle of graphql-ws connections, one watcher per transport.
 *
 * Ordering, per connection:
 * 1. `connect` at `connection_init` (graphql-ws `onConnect`): authenticates `connectionParams.authorization`
 *    once, like a browser sends its header once per HTTP request. Without one the connection is
 *    anonymous; a credential that is not a string closes it with 4400, one that does not verify with
 *    4403 and the reason, one that cannot be checked now (database unreachable) with 1013 (Try Again
 *    Later, which graphql-ws clients retry). Resolves not accepted when it has closed the connection;
 *    never rejects (any other authenticator failure is a 4403 "Not authenticated").
 * 2. While open, the connection is closed with 4403 when its credential stops holding: a JWT at its
 *    `exp` (an expiry sweep), an API key when its revocation is announced (at once) or when the
 *    periodic re-check finds it revoked (within `recheckMs`). Only a verdict closes: a key that
 *    cannot be checked now is kept, and the next re-check asks again. 4403 rather than 4401: graphql-ws
 *    clients treat 4401 as fatal, while after 4403 they may reconnect, and a client whose
 *    `connectionParams` is a function fetching a fresh token then carries on.
 * 3. `checkOperation` before each operation is admitted: the error to send instead of running it, if any.
 * 4. `forget` when the socket has closed. `close` (shutdown) stops the timers and the revocation listener.
 */
export class CredentialWatcher<C extends CredentialHolder> {
  readonly #held = new Map<C, Held>();
  readonly #options: CredentialWatcherOptions;
  readonly #logger: Logger;
  readonly #expiry: ExpirySweep<C>;
  readonly #stopListening: (() => void) | undefined;
  readonly #recheckTimer: NodeJS.Timeout;
  #rechecking = false;

  constructor(options: CredentialWatcherOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#expiry = new ExpirySweep<C>({
      sweepMs: options.expirySweepMs ?? EXPIRY_SWEEP_MS,
      expire: (connection) => this.#closeForCredential(connection, 'the token of this connection expired; reconnect with a fresh one'),
      onError: (error, connection) =>
        this.#logger.warn({ connectionId: connection.connectionId, err: error }, 'websocket: closing an expired connection failed'),
      ...(options.now && { now: options.now }),
    });
    this.#stopListening = options.revocations?.listen((principalId) => {
      for (const [connection, held] of this.#held) {
        if (held.principal?.id === principalId) this.#closeForCredential(connection, 'the API key of this connection was revoked');
      }
    });
    this.#recheckTimer = setInterval(() => {
      if (this.#rechecking) return;
      this.#rechecking = true;
      void this.recheck()
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'websocket credential re-check failed; trying again on the next tick'))
        .finally(() => (this.#rechecking = false));
    }, options.recheckMs ?? 30_000);
    this.#recheckTimer.unref();
  }

  /** Connections holding a credential being watched (anonymous ones included). */
  get size(): number {
    return this.#held.size;
  }

  principalOf(connection: C): Principal | undefined {
    return this.#held.get(connection)?.principal;
  }

  /** Step 1: `connection_init`. Accepted: the connection goes on, as `principal` (undefined: anonymous). */
  async connect(connection: C, connectionParams: Readonly<Record<string, unknown>> | undefined): Promise<Connected> {
    const params = connectionParams ?? {};
    // Present means present: `null` is a credential that is not a string, not a missing one.
    const raw = Object.hasOwn(params, 'authorization') ? params.authorization : params.Authorization;
    // A credential that is not a string is a client mistake, never "no credential": running it as
    // anonymous would hide the mistake (and a client meaning a key would silently get less).
    if (raw !== undefined && typeof raw !== 'string') {
      this.#logger.info(
        { connectionId: connection.connectionId, ip: connection.clientAddress },
        'websocket refused: connectionParams.authorization is not a string',
      );
      connection.close(CloseCode.BadRequest, 'Bad request: connectionParams.authorization must be a string ("Bearer <API key or JWT>")');
      return REFUSED;
    }
    const authorization = raw;
    let principal: Principal | undefined;
    try {
      principal = await this.#options.authenticator.authenticate(authorization);
    } catch (error) {
      const reason = error instanceof GraphQLError ? error.message : 'Not authenticated';
      if (error instanceof GraphQLError && error.extensions.code === ErrorCode.UNAVAILABLE) {
        this.#logger.warn(
          { connectionId: connection.connectionId, ip: connection.clientAddress },
          'websocket refused: credential cannot be checked right now',
        );
        connection.close(TRY_AGAIN_LATER, Buffer.from(`UNAVAILABLE: ${reason}`).subarray(0, 120).toString());
        return REFUSED;
      }
      this.#logger.info({ connectionId: connection.connectionId, ip: connection.clientAddress }, 'websocket refused: not authenticated');
      connection.close(CloseCode.Forbidden, Buffer.from(reason).subarray(0, 120).toString());
      return REFUSED;
    }
    // A socket that closed while authenticating has already been forgotten: watching it would leak it.
    if (!connection.isOpen()) return { accepted: true, principal };
    this.#held.set(connection, { principal, authorization });
    if (principal?.expiresAt !== undefined) this.#expiry.watch(connection, principal.expiresAt);
    return { accepted: true, principal };
  }

  /** Step 3: a key revoked (or a token expired) while the socket is open stops working at its next operation. */
  async checkOperation(connection: C): Promise<GraphQLError | undefined> {
    const held = this.#held.get(connection);
    if (!held?.principal) return undefined;
    const state = await this.#options.authenticator.stillValid(held.principal, held.authorization);
    if (state === 'valid') return undefined;
    if (state === 'unchecked')
      return keysUnavailable('the API key of this connection cannot be checked right now (the database is unreachable); try again shortly');
    return unauthenticated(
      state === 'revoked'
        ? 'the API key of this connection was revoked; reconnect with a valid one'
        : 'the token of this connection expired; reconnect with a fresh one',
    );
  }

  /** Step 4: the socket closed. */
  forget(connection: C): void {
    this.#expiry.unwatch(connection);
    this.#held.delete(connection);
  }

  /** Shutdown: no more closes for credentials (the transport closes every socket itself). */
  close(): void {
    this.#stopListening?.();
    clearInterval(this.#recheckTimer);
    this.#expiry.close();
  }

  /**
   * The periodic re-check of API keys (JWTs expire on their own, see the sweep): one lookup per distinct
   * key, however many connections share it (a web app's key may have thousands). Rejects when the
   * authenticator throws; the timer logs that and tries again on its next tick.
   */
  async recheck(): Promise<void> {
    const byCredential = new Map<string, { principal: Principal; connections: C[] }>();
    for (const [connection, { principal, authorization }] of this.#held) {
      if (principal?.via !== 'apikey' || authorization === undefined) continue;
      const entry = byCredential.get(authorization);
      if (entry) entry.connections.push(connection);
      else byCredential.set(authorization, { principal, connections: [connection] });
    }
    let unchecked = 0;
    for (const [authorization, { principal, connections }] of byCredential) {
      const state = await this.#options.authenticator.stillValid(principal, authorization);
      if (state === 'unchecked') unchecked++;
      if (state === 'valid' || state === 'unchecked') continue;
      for (const connection of connections) this.#closeForCredential(connection, 'the API key of this connection was revoked');
    }
    if (unchecked > 0)
      this.#logger.warn(
        { keys: unchecked },
        'websocket credential re-check: keys could not be checked (database unreachable); connections kept open',
      );
  }

  #closeForCredential(connection: C, why: string): void {
    if (!connection.isOpen()) return;
    this.#logger.info(
      { connectionId: connection.connectionId, principal: this.#held.get(connection)?.principal?.id, reason: why },
      'websocket closed: credential no longer valid',
    );
    connection.close(CloseCode.Forbidden, `Forbidden: ${why}`.slice(0, 120));
  }
}
