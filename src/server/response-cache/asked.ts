import type { IncomingHttpHeaders } from 'node:http';

/** What a POST asked, when it is a candidate for the response cache. */
export interface Asked {
  readonly query: string;
  readonly operationName: string | undefined;
  readonly variables: Record<string, unknown> | undefined;
  /** The part of the cache key after the role. */
  readonly key: string;
  /** `Cache-Control: no-cache` from the client: look nothing up (the answer may still be stored). */
  readonly noCache: boolean;
  /** `Cache-Control: no-store` from the client: store nothing from this request. */
  readonly noStore: boolean;
}

/**
 * The request part of the cache key, for a POST whose parsed JSON body is an object shaped as Apollo
 * reads it; anything else is not a candidate (Apollo answers it, usually with a 400). Whatever decides
 * the bytes or headers of the answer is in the key: the document, operation name, variables and
 * extensions, Accept (Apollo picks the content type from it) and Origin (CORS headers follow it). The
 * caller's role is put in front by {@link cacheKey}.
 */
export function askedOf(method: string, headers: IncomingHttpHeaders, body: unknown): Asked | undefined {
  if (method !== 'POST' || typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { query, operationName, variables, extensions } = body as Record<string, unknown>;
  if (typeof query !== 'string') return undefined;
  if (operationName != null && typeof operationName !== 'string') return undefined;
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return undefined;
  if (extensions != null && (typeof extensions !== 'object' || Array.isArray(extensions))) return undefined;
  const control = headers['cache-control'];
  const directives = typeof control === 'string' ? control.toLowerCase() : '';
  return {
    query,
    operationName: operationName ?? undefined,
    variables: (variables as Record<string, unknown> | null) ?? undefined,
    key:
      `${headers.accept ?? ''}\n${headers.origin ?? ''}\n${JSON.stringify(operationName ?? null)}\n` +
      `${JSON.stringify(variables ?? null)}\n${JSON.stringify(extensions ?? null)}\n${query}`,
    noCache: directives.includes('no-cache'),
    noStore: directives.includes('no-store'),
  };
}

/** The whole key: the caller's role (`anonymous` without a credential), then what was asked. */
export const cacheKey = (role: string, asked: Asked): string => `${role}\n${asked.key}`;

/**
 * Response headers that are the request's own, never replayed from a stored answer: the request id,
 * the caller's rate-limit state, and what Node writes for each response itself.
 */
const OWN_HEADERS = new Set(['x-request-id', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding']);

/** The headers of a response worth replaying with its body (see OWN_HEADERS), as [name, value] pairs. */
export function replayableHeaders(headers: Readonly<Record<string, unknown>>): Array<[string, string]> {
  const kept: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (OWN_HEADERS.has(lower) || lower.startsWith('ratelimit-') || value === undefined) continue;
    kept.push([lower, Array.isArray(value) ? value.join(', ') : String(value)]);
  }
  return kept;
}
