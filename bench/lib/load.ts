import http from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { BENCH_AUTHORIZATION } from './auth.js';
import { summarize, type Summary } from './stats.js';

/** One JSON POST, as every GraphQL client sends it. */
export interface JsonRequest {
  readonly path: string;
  readonly body: string;
}

/** Servers without access control (raw node:http, bare Apollo) ignore the authorization header. */
export const JSON_HEADERS = { 'content-type': 'application/json', authorization: BENCH_AUTHORIZATION } as const;

export interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  /** Milliseconds, from every response (not autocannon's 1 ms-resolution histogram). */
  readonly latency: Summary;
  /** autocannon's own p99 (1 ms resolution), kept to cross-check ours. */
  readonly autocannonP99: number;
  readonly bytesPerResponse: number;
}

/**
 * Closed-loop load with autocannon: `connections` keep-alive connections, each sending its next
 * request as soon as the previous answer arrives, for `seconds`. Every server compared in one
 * benchmark gets exactly these settings. Any non-2xx answer or socket error fails the measurement:
 * a fast error is not throughput.
 */
export async function closedLoop(
  baseUrl: string,
  request: JsonRequest,
  options: { connections: number; seconds: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${baseUrl}${request.path}`,
        method: 'POST',
        headers: JSON_HEADERS,
        body: request.body,
        connections: options.connections,
        duration: options.seconds,
        pipelining: 1,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
  if (result.non2xx || result.errors || result.timeouts) {
    throw new Error(`load on ${baseUrl}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  const requests = result['2xx'];
  return {
    requests,
    seconds: result.duration,
    requestsPerSecond: requests / result.duration,
    latency: summarize(latencies),
    autocannonP99: result.latency.p99,
    bytesPerResponse: requests ? result.throughput.total / requests : 0,
  };
}

/**
 * One client, one keep-alive connection, one request at a time: the latency of a request that has the
 * server to itself. Each answer is checked with `check` (throwing fails the benchmark). `timed` may be
 * called many times (e.g. taking turns with another server's client); the connection is kept between
 * calls, and `samples` holds every latency so far.
 */
export function sequentialClient(baseUrl: string, request: JsonRequest, check: (body: string) => void = () => undefined) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(request.path, baseUrl);
  const samples: number[] = [];
  return {
    samples,
    /** Sends `count` requests one after another; with `record` false they are not timed (warm-up). */
    async timed(count: number, record = true): Promise<void> {
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        const { status, body } = await post(url, request.body, agent);
        const ms = performance.now() - started;
        if (status !== 200) throw new Error(`POST ${url} answered ${status}: ${body.slice(0, 300)}`);
        check(body);
        if (record) samples.push(ms);
      }
    },
    close: () => agent.destroy(),
  };
}

/** A single POST; resolves with the status and the whole body. */
export function post(url: URL, body: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: agent ?? false, headers: { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.once('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** POSTs a GraphQL request and returns its `data`, failing on any error in the answer. */
export async function graphql<T>(baseUrl: string, request: JsonRequest): Promise<{ data: T; raw: string }> {
  const { status, body } = await post(new URL(request.path, baseUrl), request.body);
  const parsed = JSON.parse(body) as { data?: T; errors?: unknown[] };
  if (status !== 200 || parsed.errors?.length || parsed.data === undefined) {
    throw new Error(`GraphQL request to ${baseUrl} failed (${status}): ${body.slice(0, 500)}`);
  }
  return { data: parsed.data, raw: body };
}
