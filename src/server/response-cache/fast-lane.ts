import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { GraphQLError } from 'graphql';
import type { Logger } from '../../infra/logger/logger.js';
import { isTracing } from '../../infra/tracing/tracing.js';
import type { Principal } from '../../modules/access/index.js';
import { rateHeaders, type Admission } from '../admission.js';
import type { OperationObserver } from '../observe.js';
import { refusedInLane, type AnswerCache, type CachingOptions } from './http.js';

export interface FastLaneOptions {
  readonly cache: AnswerCache;
  readonly principalOf: (request: IncomingMessage) => Promise<Principal | undefined>;
  readonly admission: Admission;
  readonly observer: OperationObserver;
  readonly count: CachingOptions['count'];
  readonly logger: Logger;
  /** The request log line's logger (fixedFieldsLogger): the same line as the fastify path writes. */
  readonly requestLines: Logger;
  /** MAX_BODY_BYTES: larger bodies are fastify's to refuse. */
  readonly maxBodyBytes: number;
  /** The caller's request id, when it sent a sane one (the same rule as the server's). */
  readonly requestId: RegExp;
}

export interface FastLane {
  /** The HTTP server's request listener: answers cache hits, hands everything else to `next` (fastify). */
  handle(request: IncomingMessage, response: ServerResponse, next: (request: IncomingMessage, response: ServerResponse) => void): void;
  /** For fastify's preParsing hook: the body of a request the lane read and handed over, as a stream. */
  bodyOf(request: IncomingMessage): Readable | undefined;
  /** The key under which the lane looked this request up and found nothing (fastify's path stores under it). */
  missed(request: IncomingMessage): string | undefined;
  /** From now on every request goes to fastify (which answers 503 while closing). */
  close(): void;
}

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/**
 * Response-cache hits answered in the HTTP server's request listener, before fastify's lifecycle
 * (routing, hooks, content-type parsing, reply), which costs several times what sending a stored answer
 * does (docs/decisions/response-cache.md has the profile). It answers only what it can answer exactly as
 * the fastify path would, and hands everything else over untouched, body included:
 *
 * - only `POST /graphql` with a JSON content type and a Content-Length within MAX_BODY_BYTES, whose body
 *   holds no `__proto__` or `constructor` (which fastify's parser refuses); not while spans are recorded
 *   (the fastify path makes them); with `Cache-Control: no-cache` nothing is looked up;
 * - the credential is authenticated as on the fastify path (memoized per request: a refusal is handed
 *   over and answered there); the stored answer is looked up under the caller's role, Accept, Origin and
 *   the body's bytes, not parsed: the same bytes ask the same thing, and a miss is stored under this key
 *   by the fastify path (a body that is not JSON, or not shaped as Apollo reads it, is never stored);
 * - admission runs as on every request (variables depth, trusted documents, introspection, cost, rate
 *   limit, in-flight budget), on the parsed document and variables kept with the answer; a refusal is
 *   handed over with the request and sent by Apollo as every refusal is, without charging again;
 * - the answer goes out with the headers the fastify path sent with it when it was stored (security and
 *   CORS headers, content type: Origin and Accept are in the key) plus this request's own: its request
 *   id and RateLimit headers; the request log line, the duration histogram and the hit counter are the
 *   same as on the fastify path.
 */
export function createFastLane(options: FastLaneOptions): FastLane {
  const { cache, logger, requestLines } = options;
  const bodies = new WeakMap<IncomingMessage, Buffer>();
  const misses = new WeakMap<IncomingMessage, string>();
  let closed = false;

  const handOver = (request: IncomingMessage, response: ServerResponse, next: Next, body?: Buffer) => {
    if (body) bodies.set(request, body);
    next(request, response);
  };

  async function answer(request: IncomingMessage, response: ServerResponse, next: Next, body: Buffer, started: number): Promise<void> {
    const text = body.toString('utf8');
    if (text.includes('__proto__') || text.includes('constructor')) return handOver(request, response, next, body);
    let principal: Principal | undefined;
    try {
      principal = await options.principalOf(request);
    } catch {
      return handOver(request, response, next, body);
    }
    // The body's bytes stand for what they parse to: the same bytes are the same query, operation name,
    // variables and extensions (the key of an answer stored from a request the lane handed over).
    const key = laneKey(principal?.role ?? 'anonymous', request.headers, text);
    // `Cache-Control: no-cache`: nothing looked up; the answer may still be stored (under this key).
    const control = request.headers['cache-control'];
    const hit = control !== undefined && control.toLowerCase().includes('no-cache') ? undefined : cache.lookup(key);
    if (!hit) {
      misses.set(request, key);
      return handOver(request, response, next, body);
    }
    const role = principal?.role ?? 'anonymous';
    let admitted;
    try {
      admitted = await options.admission.admit({
        document: hit.document,
        operationName: hit.operationName,
        variables: hit.variables,
        principal,
        clientAddress: request.socket.remoteAddress ?? '',
      });
    } catch (error) {
      refusedInLane(request, error as GraphQLError);
      return handOver(request, response, next, body);
    }
    try {
      const header = request.headers['x-request-id'];
      const id = typeof header === 'string' && options.requestId.test(header) ? header : randomUUID();
      const headers: string[] = [];
      for (const [name, value] of hit.headers) headers.push(name, value);
      headers.push('x-request-id', id, 'content-length', String(hit.body.length));
      if (admitted.rate) for (const [name, value] of Object.entries(rateHeaders(admitted.rate, false))) headers.push(name, value);
      response.writeHead(200, headers);
      response.end(hit.body);
      options.count.lookup('hit');
      const seconds = (performance.now() - started) / 1000;
      options.observer.observe({
        transport: 'http',
        requestId: id,
        operationType: 'query',
        operationName: hit.operationName,
        seconds,
        errorCodes: [],
      });
      requestLines.info(
        {
          reqId: id,
          method: 'POST',
          url: request.url,
          status: 200,
          durationMs: Math.round(seconds * 100_000) / 100,
          operation: hit.operationName,
          operationType: 'query',
          role,
          responseCache: 'hit',
        },
        'request',
      );
    } finally {
      admitted.lease.release();
    }
  }

  return {
    handle(request, response, next) {
      if (closed || request.method !== 'POST' || request.url !== '/graphql' || !cache.available || isTracing())
        return next(request, response);
      const type = request.headers['content-type'];
      const length = Number(request.headers['content-length']);
      if (
        !type ||
        !JSON_TYPE.test(type) ||
        !(length > 0 && length <= options.maxBodyBytes) ||
        request.headers['transfer-encoding'] !== undefined
      ) {
        return next(request, response);
      }
      const started = performance.now();
      const chunks: Buffer[] = [];
      let received = 0;
      request.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
      });
      request.once('end', () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
        answer(request, response, next, body, started).catch((error: unknown) => {
          // Nothing sent yet: fastify answers it (and logs what it finds); otherwise the answer is cut.
          if (!response.headersSent) return handOver(request, response, next, body);
          logger.error({ err: error }, 'response cache: a hit failed after its headers were sent');
          response.destroy();
        });
      });
      request.once('error', () => response.destroy());
    },
    bodyOf(request) {
      const body = bodies.get(request);
      if (!body) return undefined;
      bodies.delete(request);
      return Object.assign(Readable.from([body]), { receivedEncodedLength: body.length });
    },
    missed: (request) => misses.get(request),
    close() {
      closed = true;
    },
  };
}

type Next = (request: IncomingMessage, response: ServerResponse) => void;

/** The fast lane's key: the role, Accept and Origin (as in asked.ts), and the body's bytes as sent. */
function laneKey(role: string, headers: IncomingHttpHeaders, body: string): string {
  return `${role}\n${headers.accept ?? ''}\n${headers.origin ?? ''}\nbody:${body}`;
}
