import { LRUCache } from 'lru-cache';
import { createRemoteJWKSet, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../../config/index.js';
import { isRole, type Principal } from './roles.js';

type JwtSettings = NonNullable<Config['auth']['jwt']>;

/** Why a token was refused, for the UNAUTHENTICATED message (never the token). */
export class JwtRejected extends Error {}

/**
 * Verifies JWTs with `jose`: HS256 with a shared secret, RS256 with a PEM public key, or whatever
 * algorithm a JWKS URL's keys declare (keys fetched on demand and cached by jose). Issuer and audience
 * are checked when configured; `exp`/`nbf` always (JWT_CLOCK_TOLERANCE_S, default 30 s). The role comes from
 * `roleClaim`, a dotted path into the payload.
 */
export async function createJwtVerifier(settings: JwtSettings): Promise<(token: string) => Promise<Principal>> {
  let verify: (token: string) => Promise<JWTPayload>;
  const options = { issuer: settings.issuer, audience: settings.audience, clockTolerance: settings.clockToleranceSeconds };
  const { key } = settings;
  if (key.kind === 'secret') {
    const secret = new TextEncoder().encode(key.secret);
    verify = async (token) => (await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] })).payload;
  } else if (key.kind === 'publicKey') {
    const publicKey = await importSPKI(key.pem, 'RS256');
    verify = async (token) => (await jwtVerify(token, publicKey, { ...options, algorithms: ['RS256'] })).payload;
  } else {
    const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(key.url));
    verify = async (token) => (await jwtVerify(token, jwks, options)).payload;
  }
  const principalOf = async (token: string): Promise<Principal> => {
    let payload: JWTPayload;
    try {
      payload = await verify(token);
    } catch (error) {
      throw new JwtRejected(`invalid token (${(error as { code?: string }).code ?? 'ERR_JWT_INVALID'})`);
    }
    const role = claimAt(payload, settings.roleClaim);
    if (!isRole(role)) throw new JwtRejected(`token has no valid role in claim "${settings.roleClaim}" (viewer, analyst or admin)`);
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new JwtRejected('token has no subject (sub)');
    const name = typeof payload.name === 'string' ? payload.name : payload.sub;
    // What a new connection would still accept, so a connection closed at this moment cannot come straight back.
    const expiresAt = typeof payload.exp === 'number' ? (payload.exp + settings.clockToleranceSeconds) * 1000 : undefined;
    return { id: `jwt:${payload.sub}`, name, role, via: 'jwt', ...(expiresAt !== undefined && { expiresAt }) };
  };
  if (key.kind === 'jwks') return principalOf;
  // With a fixed key (secret or PEM) a token's verdict changes only with time, so a token that passed
  // is trusted again without re-verifying its signature (HMAC/RSA through WebCrypto and jose's claim
  // checks: a profiled ~5% of a warm `predictions` request, every request of a client carrying the same
  // token) until it expires, for at most VERIFIED_TTL_MS. Refusals are never remembered. JWKS keys can
  // rotate, so those tokens are verified every time.
  const verified = new LRUCache<string, Principal>({ max: 10_000, ttl: VERIFIED_TTL_MS, ttlAutopurge: false });
  return async (token) => {
    const known = verified.get(token);
    if (known && (known.expiresAt === undefined || Date.now() < known.expiresAt)) return known;
    const principal = await principalOf(token);
    verified.set(token, principal, principal.expiresAt === undefined ? {} : { ttl: Math.max(1, Math.min(VERIFIED_TTL_MS, principal.expiresAt - Date.now())) });
    return principal;
  };
}

/** How long a verified token is trusted without checking it again (fixed keys only). */
const VERIFIED_TTL_MS = 60_000;

function claimAt(payload: JWTPayload, path: string): unknown {
  if (path in payload) return payload[path]; // claim names may contain dots (URLs as namespaces)
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
