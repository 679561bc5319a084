import { Kind, visit, type DocumentNode, type GraphQLSchema } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { RateDecision, RateLimiter } from '../infra/limits/rate-limiter.js';
import { Role, roleAtLeast, unauthenticated, type Principal } from '../modules/access/index.js';
import { ErrorCode, codedError } from '../shared/errors.js';
import { operationCost, tooComplex } from './limits.js';

export interface AdmissionRequest {
  document: DocumentNode;
  operationName: string | undefined | null;
  variables: Record<string, unknown> | undefined | null;
  principal: Principal | undefined;
  /** The caller's address, the rate-limit key of anonymous callers. */
  clientAddress: string;
}

export interface Admitted {
  cost: number;
  /** Undefined when rate limiting is off. */
  rate: RateDecision | undefined;
}

/**
 * The checks an operation passes after validation and before it runs, identical for HTTP (an Apollo
 * plugin's didResolveOperation) and graphql-ws (onSubscribe), since graphql-ws runs no Apollo plugin:
 *
 * 1. introspection (`__schema`, `__type`) needs the analyst role (INTROSPECTION=false refuses it for
 *    everyone earlier, in validation);
 * 2. list arguments at most MAX_SYMBOLS_PER_REQUEST long, else BAD_USER_INPUT; cost (limits.ts) at
 *    most MAX_QUERY_COST, else QUERY_TOO_COMPLEX;
 * 3. the cost is charged to the caller's rate-limit budget (API key or JWT subject; the address when
 *    anonymous), else RATE_LIMITED with `retryAfterSeconds`.
 *
 * Throws the coded GraphQLError to send; resolves with what the HTTP layer turns into headers.
 */
export interface Admission {
  admit(request: AdmissionRequest): Promise<Admitted>;
}

export function createAdmission(options: {
  schema: GraphQLSchema;
  maxCost: number;
  /** MAX_SYMBOLS_PER_REQUEST: longer `symbols` lists are BAD_USER_INPUT before any cost is charged. */
  maxListSize: number;
  rateLimiter: RateLimiter | undefined;
  authEnabled: boolean;
}): Admission {
  const costOf = memoizedCost(options.schema, options.maxListSize);
  return {
    async admit(request) {
      if (options.authEnabled && asksForIntrospection(request.document)) {
        if (!request.principal) throw unauthenticated('introspection needs the analyst role');
        if (!roleAtLeast(request.principal.role, Role.Analyst)) {
          throw codedError(ErrorCode.FORBIDDEN, `Forbidden: introspection needs role analyst or above (you are ${request.principal.role})`, {
            requiredRole: Role.Analyst,
            http: { status: 403 },
          });
        }
      }
      const cost = costOf(request);
      if (cost > options.maxCost) {
        throw tooComplex(`Query cost limit of ${options.maxCost} exceeded, found ${cost}.`, { limit: 'cost', max: options.maxCost, actual: cost });
      }
      if (!options.rateLimiter) return { cost, rate: undefined };
      const key = request.principal ? request.principal.id : `ip:${request.clientAddress}`;
      const rate = await options.rateLimiter.consume(key, cost);
      if (!rate.allowed) {
        throw codedError(ErrorCode.RATE_LIMITED, `Rate limit of ${rate.limit} cost points per window exceeded (this operation costs ${cost}); retry in ${rate.resetSeconds} s`, {
          retryAfterSeconds: rate.resetSeconds,
          cost,
          http: { status: 429, headers: new Map(Object.entries(rateHeaders(rate, true))) },
        });
      }
      return { cost, rate };
    },
  };
}

/** IETF draft `RateLimit-*` headers, plus `Retry-After` on refusals. */
export function rateHeaders(rate: RateDecision, refused: boolean): Record<string, string> {
  return {
    'ratelimit-limit': String(rate.limit),
    'ratelimit-remaining': String(rate.remaining),
    'ratelimit-reset': String(rate.resetSeconds),
    ...(refused ? { 'retry-after': String(rate.resetSeconds) } : {}),
  };
}

/**
 * operationCost, remembered per parsed document (Apollo hands the same DocumentNode for a query it
 * has seen, from its document cache) and per operation name and variables: the cost analysis is a
 * second full walk of the operation against the schema, a profiled ~5% of the warm `predictions`
 * path, and a dashboard sends the same query with the same variables over and over. The cost is a
 * pure function of those three (and of the schema and list limit, fixed here). Refusals (a list
 * longer than the limit) are not remembered: they throw again each time. Variables whose JSON is
 * long (big lists) are not remembered either, so the memo stays small.
 */
const MAX_VARIABLES_KEY = 8_192;

function memoizedCost(schema: GraphQLSchema, maxListSize: number): (request: AdmissionRequest) => number {
  const byDocument = new WeakMap<DocumentNode, LRUCache<string, number>>();
  return ({ document, operationName, variables }) => {
    const key = `${operationName ?? ''}\u0000${JSON.stringify(variables ?? {})}`;
    let known = byDocument.get(document);
    const hit = known?.get(key);
    if (hit !== undefined) return hit;
    const cost = operationCost(schema, document, operationName, variables, maxListSize) ?? 1;
    if (key.length <= MAX_VARIABLES_KEY) {
      if (!known) byDocument.set(document, (known = new LRUCache<string, number>({ max: 256 })));
      known.set(key, cost);
    }
    return cost;
  };
}

/** Whether an operation asks for `__schema` or `__type`, remembered per parsed document. */
const introspective = new WeakMap<DocumentNode, boolean>();

function asksForIntrospection(document: DocumentNode): boolean {
  let known = introspective.get(document);
  if (known === undefined) introspective.set(document, (known = findsIntrospection(document)));
  return known;
}

function findsIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    [Kind.FIELD](node) {
      if (node.name.value === '__schema' || node.name.value === '__type') found = true;
    },
  });
  return found;
}
