import { GraphQLError, Kind, visit, type DocumentNode, type GraphQLSchema } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { RateDecision, RateLimiter } from '../infra/limits/rate-limiter.js';
import { Role, roleAtLeast, unauthenticated, type Principal } from '../modules/access/index.js';
import { ErrorCode, codedError } from '../shared/errors.js';
import type { OperationSize } from './cost.js';
import type { InflightBudget, Lease } from './inflight.js';
import { nestingExceeds, operationCost, tooComplex, variablesTooDeep } from './limits.js';
import { startMeter } from './response-meter.js';
import type { TrustedDocuments } from './trusted-documents.js';

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
  /**
   * The operation's share of the in-flight budget: the transport releases it when the operation has
   * finished, however it finished (idempotent).
   */
  lease: Lease;
}

const NO_LEASE: Lease = { cost: 0, release: () => undefined };

/**
 * The checks an operation passes after validation and before it runs, identical for HTTP (an Apollo
 * plugin's didResolveOperation) and graphql-ws (onSubscribe), since graphql-ws runs no Apollo plugin:
 *
 * 1. variables nested at most MAX_VARIABLES_DEPTH deep, else BAD_USER_INPUT, checked without
 *    recursion before anything walks them;
 * 2. with TRUSTED_DOCUMENTS_ONLY, a caller below the analyst role (a viewer, or anonymous) runs only a
 *    registered document (trusted-documents.ts), else 403 FORBIDDEN_OPERATION;
 * 3. introspection (`__schema`, `__type`) needs the analyst role (INTROSPECTION=false refuses it for
 *    everyone earlier, in validation);
 * 4. list arguments at most MAX_SYMBOLS_PER_REQUEST long, else BAD_USER_INPUT; fields after fragment
 *    expansion at most MAX_EXPANDED_NODES and cost (cost.ts) at most MAX_QUERY_COST, else
 *    QUERY_TOO_COMPLEX; an operation whose size cannot be measured is refused, never charged a guess;
 * 5. the cost is charged to the caller's rate-limit budget (API key or JWT subject; the address when
 *    anonymous), else RATE_LIMITED with `retryAfterSeconds`;
 * 6. the cost is held in the instance's in-flight budget (inflight.ts) until the transport releases
 *    the lease: a short wait when full, then RATE_LIMITED.
 *
 * Throws the coded GraphQLError to send; resolves with what the HTTP layer turns into headers.
 */
export interface Admission {
  admit(request: AdmissionRequest): Promise<Admitted>;
}

export function createAdmission(options: {
  schema: GraphQLSchema;
  maxCost: number;
  /** MAX_EXPANDED_NODES; default: no limit beyond the cost's. */
  maxNodes?: number;
  /** MAX_VARIABLES_DEPTH; default 32. */
  maxVariablesDepth?: number;
  /** MAX_SYMBOLS_PER_REQUEST: longer `symbols` lists are BAD_USER_INPUT before any cost is charged. */
  maxListSize: number;
  rateLimiter: RateLimiter | undefined;
  /** INFLIGHT_COST_BUDGET; undefined: operations are not held back. */
  inflight?: InflightBudget | undefined;
  authEnabled: boolean;
  /** TRUSTED_DOCUMENTS_ONLY's registered set; undefined: any document may run. */
  trustedDocuments?: TrustedDocuments | undefined;
}): Admission {
  const costOf = memoizedCost(options.schema, options.maxListSize);
  const maxNodes = options.maxNodes ?? Number.POSITIVE_INFINITY;
  const maxVariablesDepth = options.maxVariablesDepth ?? 32;
  return {
    async admit(request) {
      if (request.variables != null && nestingExceeds(request.variables, maxVariablesDepth)) throw variablesTooDeep(maxVariablesDepth);
      const trusted = options.trustedDocuments;
      if (trusted && !(request.principal && roleAtLeast(request.principal.role, Role.Analyst)) && !trusted.has(request.document)) {
        throw untrustedOperation(request.principal);
      }
      if (options.authEnabled && asksForIntrospection(request.document)) {
        if (!request.principal) throw unauthenticated('introspection needs the analyst role');
        if (!roleAtLeast(request.principal.role, Role.Analyst)) {
          throw codedError(
            ErrorCode.FORBIDDEN,
            `Forbidden: introspection needs role analyst or above (you are ${request.principal.role})`,
            {
              requiredRole: Role.Analyst,
              http: { status: 403 },
            },
          );
        }
      }
      let size: OperationSize;
      try {
        size = costOf(request);
      } catch (error) {
        if (error instanceof GraphQLError && typeof error.extensions.code === 'string') throw error;
        throw tooComplex("The operation's cost could not be measured; it is refused.", { limit: 'cost', max: options.maxCost });
      }
      const { cost, nodes } = size;
      if (nodes > maxNodes) {
        throw tooComplex(`Expanded field limit of ${maxNodes} exceeded (fields after fragment expansion), found ${nodes}.`, {
          limit: 'nodes',
          max: maxNodes,
          actual: nodes,
        });
      }
      if (!(cost <= options.maxCost)) {
        throw tooComplex(`Query cost limit of ${options.maxCost} exceeded, found ${cost}.`, {
          limit: 'cost',
          max: options.maxCost,
          actual: cost,
        });
      }
      const hold = async () => (options.inflight ? options.inflight.acquire(cost) : NO_LEASE);
      if (!options.rateLimiter) return { cost, rate: undefined, lease: await hold() };
      const key = request.principal ? request.principal.id : `ip:${request.clientAddress}`;
      const rate = await options.rateLimiter.consume(key, cost);
      if (!rate.allowed) {
        throw codedError(
          ErrorCode.RATE_LIMITED,
          `Rate limit of ${rate.limit} cost points per window exceeded (this operation costs ${cost}); retry in ${rate.resetSeconds} s`,
          {
            retryAfterSeconds: rate.resetSeconds,
            cost,
            http: { status: 429, headers: new Map(Object.entries(rateHeaders(rate, true))) },
          },
        );
      }
      // Charged before waiting for the in-flight budget, so a caller past its rate limit is refused
      // at once and never holds a place in the queue.
      return { cost, rate, lease: await hold() };
    },
  };
}

/**
 * One code for viewers and anonymous callers alike: what either needs to do is the same (send one of the
 * registered operations, or use an analyst's credential), and a client handles one code.
 */
function untrustedOperation(principal: Principal | undefined) {
  const who = principal ? `you are ${principal.role}` : 'you sent no credential';
  return codedError(
    ErrorCode.FORBIDDEN_OPERATION,
    `Forbidden: this gateway runs only its registered trusted documents (the web app's operations) for callers below ` +
      `the analyst role (${who}); send one of them unchanged, or use an analyst's credential`,
    { requiredRole: Role.Analyst, http: { status: 403 } },
  );
}

/**
 * What an admitted operation holds until it has finished, the same on both transports: its in-flight
 * lease, and for a query or mutation a response meter (MAX_RESPONSE_ITEMS, response-meter.ts) started on
 * its context. A subscription holds only the lease, until it has started (its events take their own
 * share). `release` gives back both, once, however the operation ended.
 */
export function holdAdmitted(
  admitted: Pick<Admitted, 'lease'>,
  operation: { subscription: boolean; context: object },
  limits: { maxResponseItems: number; inflight?: InflightBudget | undefined },
): Lease {
  if (operation.subscription) return admitted.lease;
  const meter = startMeter(operation.context, limits.maxResponseItems, limits.inflight);
  return {
    cost: admitted.lease.cost,
    release() {
      admitted.lease.release();
      meter.release();
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
 * second full walk of the operation against the schema (a visible share of a warm request, see
 * docs/decisions/hot-path-measurements.md), and a dashboard sends the same query with the same variables over and over. The cost is a
 * pure function of those three (and of the schema and list limit, fixed here). Refusals (a list
 * longer than the limit, variables that do not fit) are not remembered: they throw again each time.
 * Variables whose JSON is long (big lists) are not remembered either, so the memo stays small.
 */
const MAX_VARIABLES_KEY = 8_192;

function memoizedCost(schema: GraphQLSchema, maxListSize: number): (request: AdmissionRequest) => OperationSize {
  const byDocument = new WeakMap<DocumentNode, LRUCache<string, OperationSize>>();
  return ({ document, operationName, variables }) => {
    const key = `${operationName ?? ''}\u0000${JSON.stringify(variables ?? {})}`;
    let known = byDocument.get(document);
    const hit = known?.get(key);
    if (hit !== undefined) return hit;
    const size = operationCost(schema, document, operationName, variables, maxListSize);
    if (key.length <= MAX_VARIABLES_KEY) {
      if (!known) byDocument.set(document, (known = new LRUCache<string, OperationSize>({ max: 256 })));
      known.set(key, size);
    }
    return size;
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
