import type { Config } from '../../config/index.js';
import { ErrorCode, codedError } from '../../shared/errors.js';
import type { ApiKeysService } from './api-keys.service.js';
import { looksLikeApiKey } from './api-keys.service.js';
import { JwtRejected, createJwtVerifier } from './jwt.js';
import { DEVELOPMENT_PRINCIPAL, type Principal } from './roles.js';

/**
 * Turns the credential a caller presented (`Authorization: Bearer …` on HTTP, `connectionParams` on
 * graphql-ws) into a {@link Principal}, once per HTTP request or WebSocket connection.
 *
 * - no credential: `undefined` (anonymous); resolvers that need a role refuse with UNAUTHENTICATED;
 * - a credential that does not verify (unknown, revoked, expired, bad signature, wrong mode): throws
 *   UNAUTHENTICATED, so a mistyped key fails loudly instead of silently running as anonymous;
 * - AUTH_MODE=off: every caller is {@link DEVELOPMENT_PRINCIPAL} (an admin), credentials ignored.
 */
export interface Authenticator {
  readonly mode: Config['auth']['mode'];
  authenticate(authorization: string | undefined): Promise<Principal | undefined>;
  /**
   * Whether a principal authenticated earlier still holds: its credential has not expired (a JWT's
   * `exp`) and, for an API key, not been revoked since (one indexed lookup).
   */
  stillValid(principal: Principal, authorization: string | undefined): Promise<boolean>;
}

export async function createAuthenticator(auth: Config['auth'], apiKeys: ApiKeysService): Promise<Authenticator> {
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
      const principal = await apiKeys.verify(credential);
      if (!principal) throw unauthenticated('unknown or revoked API key');
      return principal;
    }
    if (!verifyJwt) throw unauthenticated(acceptsKeys ? 'unknown or revoked API key' : 'JWTs are not accepted');
    try {
      return await verifyJwt(credential);
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
      if (principal.expiresAt !== undefined && Date.now() >= principal.expiresAt) return false;
      if (principal.via !== 'apikey') return true;
      try {
        return (await authenticate(authorization))?.id === principal.id;
      } catch {
        return false;
      }
    },
  };
}

export function unauthenticated(message: string) {
  return codedError(ErrorCode.UNAUTHENTICATED, `Not authenticated: ${message}`, { http: { status: 401 } });
}
