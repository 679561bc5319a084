import type { Config } from '../../config/index.js';
import { ErrorCode, codedError } from '../../shared/errors.js';
import type { ApiKeysService } from './api-keys.service.js';
import { keysUnavailable, looksLikeApiKey } from './api-keys.service.js';
import { JwtRejected, createJwtVerifier } from './jwt.js';
import { principalIdProblem } from './principal-id.js';
import { DEVELOPMENT_PRINCIPAL, type Principal } from './roles.js';

/**
 * Whether a credential accepted earlier still holds. `unchecked` is no verdict: the database could not
 * answer and the key is not remembered, so a connection using it is neither trusted with a new
 * operation nor closed as if its key had been revoked.
 */
export type CredentialState = 'valid' | 'expired' | 'revoked' | 'unchecked';

/**
 * Turns the credential a caller presented (`Authorization: Bearer …` on HTTP, `connectionParams` on
 * graphql-ws) into a {@link Principal}, once per HTTP request or WebSocket connection.
 *
 * - no credential: `undefined` (anonymous); resolvers that need a role refuse with UNAUTHENTICATED;
 * - a credential that does not verify (unknown, revoked, expired, bad signature, wrong mode, a principal
 *   id with control characters): throws UNAUTHENTICATED, so a mistyped key fails loudly instead of
 *   silently running as anonymous;
 * - an API key that cannot be checked (database unreachable) and was not verified recently: throws
 *   UNAVAILABLE (HTTP 503), never UNAUTHENTICATED: the key may well be good;
 * - AUTH_MODE=off: every caller is {@link DEVELOPMENT_PRINCIPAL} (an admin), credentials ignored.
 */
export interface Authenticator {
  readonly mode: Config['auth']['mode'];
  authenticate(authorization: string | undefined): Promise<Principal | undefined>;
  /**
   * Whether a principal authenticated earlier still holds: its credential has not expired (a JWT's
   * `exp`) and, for an API key, not been revoked since (one indexed lookup).
   */
  stillValid(principal: Principal, authorization: string | undefined): Promise<CredentialState>;
}

export async function createAuthenticator(auth: Config['auth'], apiKeys: Pick<ApiKeysService, 'check'>): Promise<Authenticator> {
  const acceptsKeys = auth.mode === 'apikey' || auth.mode === 'apikey+jwt';
  const verifyJwt = auth.jwt ? await createJwtVerifier(auth.jwt) : undefined;

  const authenticate = async (authorization: string | undefined): Promise<Principal | undefined> => {
    if (auth.mode === 'off') return DEVELOPMENT_PRINCIPAL;
    if (authorization === undefined || authorization.trim() === '') return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw unauthenticated('expected "Authorization: Bearer <API key or JWT>"');
    const credential = match[1]!;
    if (looksLikeApiKey(credential)) {
      if (!acceptsKeys) throw unauthenticated(`API keys are not accepted (AUTH_MODE=${auth.mode})`);
      const result = await apiKeys.check(credential);
      if (result.state === 'unchecked')
        throw keysUnavailable('this API key cannot be checked right now (the database is unreachable); try again shortly');
      if (result.state === 'unknown') throw unauthenticated('unknown or revoked API key');
      return accepted(result.principal);
    }
    if (!verifyJwt) throw unauthenticated(acceptsKeys ? 'unknown or revoked API key' : 'JWTs are not accepted');
    try {
      return accepted(await verifyJwt(credential));
    } catch (error) {
      if (error instanceof JwtRejected) throw unauthenticated(error.message);
      throw error;
    }
  };

  return {
    mode: auth.mode,
    authenticate,
    async stillValid(principal, authorization) {
      // JWTs carry their own expiry; keys can be revoked at any moment.
      if (principal.expiresAt !== undefined && Date.now() >= principal.expiresAt) return 'expired';
      if (principal.via !== 'apikey') return 'valid';
      const credential = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
      if (credential === undefined) return 'revoked';
      const result = await apiKeys.check(credential);
      if (result.state === 'unchecked') return 'unchecked';
      return result.state === 'valid' && result.principal.id === principal.id ? 'valid' : 'revoked';
    },
  };
}

/** The one gate every accepted principal passes: an id that is safe to store, log and audit. */
function accepted(principal: Principal): Principal {
  const problem = principalIdProblem(principal.id);
  if (problem) throw unauthenticated(`the credential's principal id ${problem}`);
  return principal;
}

export function unauthenticated(message: string) {
  return codedError(ErrorCode.UNAUTHENTICATED, `Not authenticated: ${message}`, { http: { status: 401 } });
}
