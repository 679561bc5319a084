import { LRUCache } from 'lru-cache';
import { createRemoteJWKSet, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../../config/index.js';
import { principalIdProblem, textProblem } from './principal-id.js';
import { isRole, type Principal } from './roles.js';

type JwtSettings = NonNullable<Config['auth']['jwt']>;

/** Why a token was refused, for the UNAUTHENTICATED message (never the token). */
export class JwtRejected extends Error {}

/**
 * Verifies JWTs with `jose`: HS256 with a shared secret, RS256 with a PEM public key, or whatever
 * algorithm a JWKS URL's keys declare (keys fetched on demand and cached by jose). Issuer and audience
 * are checked when configured; `exp`/`nbf` always (JWT_CLOCK_TOLERANCE_S, default 30 s). `exp` is
 * required and bounded: a token may live at most `maxTtlSeconds` (JWT_MAX_TTL_S), counted from its `iat`
 * and from now, so a token that never expires, or in a century, is refused rather than trusted for good.
 * The role comes from `roleClaim` (see {@link claimAt}); `sub` becomes the principal id `jwt:<sub>`.
 */
export async function createJwtVerifier(settings: JwtSettings): Promise<(token: string) => Promise<Principal>> {
  let verify: (token: string) => Promise<JWTPayload>;
  const options = {
    issuer: settings.issuer,
    audience: settings.audience,
    clockTolerance: settings.clockToleranceSeconds,
    requiredClaims: ['exp'],
  };
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
      const { code, claim, reason } = error as { code?: string; claim?: string; reason?: string };
      // jose names the claim that failed (e.g. a missing `exp`); never the token.
      throw new JwtRejected(`invalid token (${code ?? 'ERR_JWT_INVALID'}${reason === 'missing' && claim ? `: no "${claim}" claim` : ''})`);
    }
    const lifetimeProblem = lifetimeProblemOf(payload, settings.maxTtlSeconds, settings.clockToleranceSeconds);
    if (lifetimeProblem) throw new JwtRejected(lifetimeProblem);
    const role = claimAt(payload, settings.roleClaim);
    if (!isRole(role)) throw new JwtRejected(`token has no valid role in claim "${settings.roleClaim}" (viewer, analyst or admin)`);
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new JwtRejected('token has no subject (sub)');
    const subProblem = principalIdProblem(`jwt:${payload.sub}`);
    if (subProblem) throw new JwtRejected(`token subject (sub) is not acceptable: jwt:<sub> ${subProblem}`);
    // The name is for display only: one that is not safe text is replaced rather than refused.
    const name = typeof payload.name === 'string' && textProblem(payload.name, MAX_NAME_LENGTH) === undefined ? payload.name : payload.sub;
    // What a new connection would still accept, so a connection closed at this moment cannot come straight back.
    const expiresAt = (payload.exp! + settings.clockToleranceSeconds) * 1000;
    return { id: `jwt:${payload.sub}`, name, role, via: 'jwt', expiresAt };
  };
  if (key.kind === 'jwks') return principalOf;
  // With a fixed key (secret or PEM) a token's verdict changes only with time, so a token that passed
  // is trusted again without re-verifying its signature (HMAC/RSA through WebCrypto and jose's claim
  // checks, on every request of a client carrying the same token: a visible share of a warm request, see
  // docs/decisions/hot-path-measurements.md) until it expires, for at most VERIFIED_TTL_MS. Refusals are never remembered. JWKS keys can
  // rotate, so those tokens are verified every time.
  const verified = new LRUCache<string, Principal>({ max: 10_000, ttl: VERIFIED_TTL_MS, ttlAutopurge: false });
  return async (token) => {
    const known = verified.get(token);
    if (known && (known.expiresAt === undefined || Date.now() < known.expiresAt)) return known;
    const principal = await principalOf(token);
    verified.set(token, principal, { ttl: Math.max(1, Math.min(VERIFIED_TTL_MS, (principal.expiresAt ?? 0) - Date.now())) });
    return principal;
  };
}

/** How long a verified token is trusted without checking it again (fixed keys only). */
const VERIFIED_TTL_MS = 60_000;

const MAX_NAME_LENGTH = 200;

/**
 * Why the token lives too long, or undefined. Counted from `iat` (what the issuer granted) and from now
 * (what is left), so neither a missing `iat` nor one set in the future gets a far `exp` through.
 */
function lifetimeProblemOf(payload: JWTPayload, maxTtlSeconds: number, toleranceSeconds: number): string | undefined {
  const exp = payload.exp!; // required, and a number (jose checked both)
  const now = Date.now() / 1000;
  if (exp - now > maxTtlSeconds + toleranceSeconds) return `token expires more than ${maxTtlSeconds} s from now (JWT_MAX_TTL_S)`;
  if (typeof payload.iat === 'number' && exp - payload.iat > maxTtlSeconds)
    return `token lifetime (exp - iat) exceeds ${maxTtlSeconds} s (JWT_MAX_TTL_S)`;
  return undefined;
}

/**
 * The role claim: `path` names it. A namespaced claim (a URL such as `https://sibyl.example/role`, as
 * Auth0 and others require) is one top-level name, dots and all; anything else is a dotted path
 * followed through nested objects only (`realm_access.role` is `payload.realm_access.role`, and a
 * top-level claim literally named "realm_access.role" is ignored: it would let whoever shapes the
 * payload pick which reading wins). Which reading applies depends on configuration, never on the token.
 * Only own properties are followed (`__proto__`, `constructor` lead nowhere).
 */
export function claimAt(payload: JWTPayload, path: string): unknown {
  const parts = path.includes('://') ? [path] : path.split('.');
  let value: unknown = payload;
  for (const part of parts) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
