import type { IncomingMessage } from 'node:http';
import type { ApolloServerPlugin } from '@apollo/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import type { Context, OperationTrace } from '../../context/context.js';
import type { ResponseCache, StoreOutcome } from '../../infra/response-cache/response-cache.js';
import type { Principal } from '../../modules/access/index.js';
import { rateHeaders, type Admission } from '../admission.js';
import type { OperationObserver } from '../observe.js';
import { askedOf, cacheKey, replayableHeaders, type Asked } from './asked.js';
import { planOperation, type Plan } from './plan.js';

/** One stored answer: the bytes Apollo sent, their content type, and what admission needs to admit it again. */
export interface CachedAnswer {
  readonly body: Buffer;
  readonly contentType: string;
  /**
   * Every header the miss's response carried that is not the request's own (asked.ts replayableHeaders):
   * the content type, and the security and CORS headers the server's hooks set, which a hit answered
   * before those hooks run (fast-lane.ts) replays as they were.
   */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The parsed operation, for admission (cost, trusted documents, introspection) on every hit. */
  readonly document: DocumentNode;
  readonly operationName: string | undefined;
  /** The request's variables, as parsed when it was stored: every request with this key sent the same. */
  readonly variables: Record<string, unknown> | undefined;
}

export type AnswerCache = ResponseCache<CachedAnswer>;

/** Why a miss's answer was or was not stored (`sibyl_response_cache_stores_total{outcome}`). */
export type StoreResult = StoreOutcome | 'uncacheable' | 'volatile' | 'error' | 'no-store';

export interface CachingOptions {
  readonly cache: AnswerCache;
  /** The request's principal, authenticated once per request (the fast lane and the Apollo context reuse it). */
  readonly principalOf: (request: IncomingMessage) => Promise<Principal | undefined>;
  readonly admission: Admission;
  readonly observer: OperationObserver;
  readonly count: {
    lookup(result: 'hit' | 'miss'): void;
    store(result: StoreResult): void;
  };
  /**
   * The key under which the fast lane looked this request up and found nothing (fast-lane.ts): the
   * answer is stored under it, and not looked up again.
   */
  readonly missedInLane?: ((request: IncomingMessage) => string | undefined) | undefined;
}

/** What the miss path learns while Apollo runs the operation, by the request's trace object. */
interface Pending {
  readonly since: number;
  plan?: Plan;
  document?: DocumentNode;
  /** Apollo's response had no error and status 200. */
  clean?: boolean;
}

const pending = new WeakMap<OperationTrace, Pending>();
/** Admission's refusal of a hit, for the Apollo path to send as it sends any refusal. */
const refusals = new WeakMap<OperationTrace, GraphQLError>();
/** The same, from the fast lane, which runs before the request has a trace. */
const laneRefusals = new WeakMap<IncomingMessage, GraphQLError>();

/** The fast lane's hand-over of a hit admission refused (fast-lane.ts). */
export function refusedInLane(request: IncomingMessage, refusal: GraphQLError): void {
  laneRefusals.set(request, refusal);
}

/**
 * The response cache on the HTTP path (docs/decisions/response-cache.md): wraps the POST /graphql
 * handler. A query answered before by the same role, with the same document, operation name, variables,
 * extensions and Accept header, whose inputs have not changed since, is sent from the cache without
 * parsing, validating or executing it. What guards every request guards a hit too, in the same order:
 * the credential is authenticated (its role is part of the key), and admission runs on the stored
 * parsed document (variables depth, trusted documents, introspection role, cost, the caller's rate
 * limit and RateLimit headers, the in-flight budget). A hit that admission refuses is handed to Apollo,
 * which sends the refusal as it sends every refusal (admission is not charged twice).
 *
 * Everything else, and every miss, runs through Apollo unchanged; a miss's answer is stored only if it
 * is a query without errors, every field it selects is in the field map (plan.ts), nothing it reads
 * changed while it ran (versions taken before Apollo saw the request), and no resolver marked it
 * volatile (stale bars served while the market is failing). GET requests are never cached here: they
 * carry Cache-Control for HTTP caches instead (cache-control.ts).
 */
export function cachingHandler<Handler extends (...args: never[]) => unknown>(apolloHandler: Handler, options: CachingOptions): Handler {
  const { cache, count } = options;
  // Fastify's handler type is generic over the route; this one only passes the request and reply on.
  const next = apolloHandler as unknown as (this: unknown, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  const handler = async function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    const refusedEarlier = laneRefusals.get(request.raw);
    if (refusedEarlier) {
      refusals.set(request.trace, refusedEarlier);
      return next.call(this, request, reply);
    }
    const asked = askedOf(request.method, request.headers, request.body);
    if (!asked) return next.call(this, request, reply);
    if (!cache.available) {
      count.lookup('miss');
      count.store('unavailable');
      return next.call(this, request, reply);
    }
    let principal: Principal | undefined;
    try {
      principal = await options.principalOf(request.raw);
    } catch {
      // The Apollo context authenticates the same request (memoized: the same refusal) and answers it.
      return next.call(this, request, reply);
    }
    const role = principal?.role ?? 'anonymous';
    const laneKey = options.missedInLane?.(request.raw);
    const key = laneKey ?? cacheKey(role, asked);
    const hit = asked.noCache || laneKey !== undefined ? undefined : cache.lookup(key);
    if (hit) {
      count.lookup('hit');
      return serveHit(this, request, reply, hit, asked, principal, role);
    }
    count.lookup('miss');
    const state: Pending = { since: cache.versions.now() };
    pending.set(request.trace, state);
    const body: unknown = await next.call(this, request, reply);
    count.store(store(key, asked, state, request, reply, body));
    return body;
  };
  return handler as unknown as Handler;

  async function serveHit(
    self: unknown,
    request: FastifyRequest,
    reply: FastifyReply,
    hit: CachedAnswer,
    asked: Asked,
    principal: Principal | undefined,
    role: string,
  ) {
    const started = performance.now();
    let admitted;
    try {
      admitted = await options.admission.admit({
        document: hit.document,
        operationName: asked.operationName,
        variables: asked.variables,
        principal,
        clientAddress: request.ip,
      });
    } catch (error) {
      refusals.set(request.trace, error as GraphQLError);
      return next.call(self, request, reply);
    }
    try {
      Object.assign(request.trace, { operationName: hit.operationName, operationType: 'query', role, responseCache: 'hit' });
      void reply.code(200).header('content-type', hit.contentType);
      if (admitted.rate) for (const [name, value] of Object.entries(rateHeaders(admitted.rate, false))) void reply.header(name, value);
      options.observer.observe({
        transport: 'http',
        requestId: request.id,
        operationType: 'query',
        operationName: hit.operationName,
        seconds: (performance.now() - started) / 1000,
        errorCodes: [],
      });
      return await reply.send(hit.body);
    } finally {
      admitted.lease.release();
    }
  }

  function store(key: string, asked: Asked, state: Pending, request: FastifyRequest, reply: FastifyReply, body: unknown): StoreResult {
    if (asked.noStore) return 'no-store';
    if (!state.plan || !state.document) return 'error';
    if (!state.plan.cacheable) return 'uncacheable';
    // Apollo writes `errors` before `data`: an answer starting with data carries no error.
    if (!state.clean || reply.statusCode !== 200 || typeof body !== 'string' || !body.startsWith('{"data":')) return 'error';
    if (request.trace.uncacheable) return 'volatile';
    const contentType = reply.getHeader('content-type');
    if (typeof contentType !== 'string') return 'error';
    const bytes = Buffer.from(body);
    const headers = replayableHeaders(reply.getHeaders());
    const answer: CachedAnswer = {
      body: bytes,
      contentType,
      headers,
      document: state.document,
      operationName: asked.operationName,
      variables: asked.variables,
    };
    return cache.store(key, answer, bytes.length + key.length * 2 + 512, state.plan.inputs, state.since);
  }
}

/**
 * The Apollo half: on a request the HTTP half is caching, records the parsed document and the plan of
 * what it reads (once the operation is resolved), and whether the response went out clean. Must come
 * after every plugin that may replace the response in willSendResponse (the response-size limit).
 */
export function responseCachePlugin(schema: GraphQLSchema): ApolloServerPlugin<Context> {
  return {
    async requestDidStart({ contextValue }) {
      const state = pending.get(contextValue.trace);
      if (!state) return;
      return {
        async didResolveOperation({ document, operationName, request }) {
          state.document = document;
          state.plan = planOperation(schema, document, operationName, request.variables);
        },
        async willSendResponse({ response }) {
          const status = response.http.status ?? 200;
          state.clean = status === 200 && response.body.kind === 'single' && !response.body.singleResult.errors?.length;
        },
      };
    },
  };
}

/** A hit refused by admission, taken once by the Apollo admission plugin to throw instead of admitting again. */
export function takeRefusal(trace: OperationTrace): GraphQLError | undefined {
  const refusal = refusals.get(trace);
  if (refusal) refusals.delete(trace);
  return refusal;
}
