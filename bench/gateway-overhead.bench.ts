import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { row, type Bench, type BenchContext } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { closedLoop, graphql, post, type JsonRequest, type LoadResult } from './lib/load.js';
import { SERIES, delta, scrape } from './lib/metrics.js';
import { seededGateways } from './lib/gateways.js';
import { benchSymbols } from './lib/postgres.js';
import { startServer, type ServerProcess } from './lib/process.js';
import { expectPredictions, predictionsRequest } from './lib/workload.js';

/**
 * What the gateway costs on its fastest path: a 50-symbol `predictions` query whose every answer is
 * in cache, under closed-loop load. Compared, with the same autocannon settings and the same bytes on
 * the wire, with (a) plain node:http sending the gateway's captured answer, the most this machine can
 * serve of this payload, (b) bare Apollo Server answering the same query from a static array, what
 * a GraphQL server costs before doing any work of its own, and two compiled-execution servers answering
 * from the same array: (c) mercurius + graphql-jit, the fastest common Node GraphQL server, and (d)
 * Apollo Server + graphql-jit, what the gateway's own framework can do with a compiled executor.
 *
 * Data: 60 symbols of the seeded synthetic market, stored through BarsRepository in a fresh PostgreSQL
 * scratch database, so the gateway serves the bars store as it serves imported data (the built-in
 * synthetic market has only 20 symbols). Caches run with their default TTLs, as deployed: the market
 * tier (1 s) expires during the run and is refetched, which the notes quantify with hit rates.
 *
 * A second gateway on the same database runs with the response cache on (RESPONSE_CACHE=on): the same
 * query, every answer after the first a hit (no bar arrives during the run: stored bars, no feed), which
 * still authenticates the JWT, admits the operation (cost, rate limit, in-flight budget) and writes the
 * request log line. It must send the same bytes as the first gateway, and its hit counter must account
 * for the requests measured.
 */
const NAME = 'gateway-overhead';
const SYMBOLS = 50;

async function run(context: BenchContext) {
  // Smoke: no warm-up, half a second each (the figures mean nothing there; the code path runs).
  const settings = context.smoke ? { connections: 5, seconds: 0.5, warmupSeconds: 0 } : { connections: 50, seconds: 10, warmupSeconds: 3 };
  const symbols = benchSymbols(60).slice(0, SYMBOLS);
  const request = predictionsRequest(symbols);
  const check = expectPredictions(SYMBOLS);
  const scratch = tempDir('sibyl-bench-overhead-');
  const seeded = await seededGateways(context.shared, 'overhead', { symbols: 60, bars: 250, configs: ['default', 'responseCache'] });
  const notes: string[] = [];
  try {
    const measure = async (server: ServerProcess): Promise<LoadResult> => {
      context.log(`${server.name}: warm-up ${settings.warmupSeconds} s, then ${settings.seconds} s at ${settings.connections} connections`);
      if (settings.warmupSeconds > 0)
        await closedLoop(server.url, request, { connections: settings.connections, seconds: settings.warmupSeconds });
      const result = await closedLoop(server.url, request, settings);
      context.log(
        `${server.name}: ${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.latency.p50.toFixed(2)} ms, p99 ${result.latency.p99.toFixed(2)} ms`,
      );
      return result;
    };

    // The gateway first: its answer becomes the payload of both baselines.
    const gateway = seeded.gateways[0]!;
    const cachedGateway = seeded.gateways[1]!;
    let gw: LoadResult;
    let hits: LoadResult;
    let answer: { data: { predictions: unknown[] }; raw: string };
    let cache: string;
    let hitCount: string;
    try {
      const idle = await scrape(gateway.url);
      answer = await graphql<{ predictions: unknown[] }>(gateway.url, request);
      check(answer.raw);
      gw = await measure(gateway);
      const loaded = await scrape(gateway.url);
      const tiers = ['market', 'features', 'predictions'].map((tier) => {
        const hit = loaded.get(`sibyl_cache_requests_total{tier="${tier}",result="hit"}`) ?? 0;
        const miss = loaded.get(`sibyl_cache_requests_total{tier="${tier}",result="miss"}`) ?? 0;
        return `${tier} ${((100 * hit) / Math.max(1, hit + miss)).toFixed(2)}%`;
      });
      cache = `cache hit rates over the first query, warm-up and run: ${tiers.join(', ')}; ${delta(idle, loaded, SERIES.marketFetches)} market fetches and ${delta(idle, loaded, SERIES.inferenceRuns)} inference runs during them`;
      context.shared.set('rss', { idle: idle.get(SERIES.rss), afterLoad: loaded.get(SERIES.rss) });
      check((await graphql<{ predictions: unknown[] }>(gateway.url, request)).raw);

      // The response cache's hits: the same bytes (checked before and after), and the hits counted.
      const HIT = 'sibyl_cache_requests_total{tier="response",result="hit"}';
      for (let i = 0; i < 2; i++) await expectSameBytes(cachedGateway, request, answer.raw);
      const before = (await scrape(cachedGateway.url)).get(HIT) ?? 0;
      hits = await measure(cachedGateway);
      const after = (await scrape(cachedGateway.url)).get(HIT) ?? 0;
      await expectSameBytes(cachedGateway, request, answer.raw);
      // The warm-up's requests are hits too; the measured ones must all be.
      const measuredHits = after - before;
      if (measuredHits < hits.requests) throw new Error(`response cache: ${measuredHits} hits for ${hits.requests} requests measured`);
      hitCount = `response cache gateway: ${measuredHits} hits counted over warm-up and run (${hits.requests} requests measured), every answer the gateway's bytes`;
    } finally {
      await seeded.release();
    }

    const bodyFile = path.join(scratch.dir, 'body.json');
    const predictionsFile = path.join(scratch.dir, 'predictions.json');
    writeFileSync(bodyFile, answer.raw);
    writeFileSync(predictionsFile, JSON.stringify(answer.data.predictions));

    // The baselines start together (nothing is measured meanwhile) and are measured one at a time;
    // the idle ones cost nothing. Each must send the gateway's exact bytes before it is measured, and
    // again after (mercurius switches to its compiled query only after the first executions).
    const predictionsEnv = { BENCH_PREDICTIONS_FILE: predictionsFile, NODE_ENV: 'production' };
    const baselines = await startAll([
      startServer('raw node:http', 'bench/lib/raw-http-server.ts', { BENCH_BODY_FILE: bodyFile, NODE_ENV: 'production' }),
      startServer('mercurius + graphql-jit', 'bench/lib/mercurius-server.ts', predictionsEnv),
      startServer('Apollo Server + graphql-jit', 'bench/lib/apollo-jit-server.ts', predictionsEnv),
      startServer('bare Apollo Server', 'bench/lib/apollo-server.ts', predictionsEnv),
    ]);
    const results: LoadResult[] = [];
    try {
      for (const server of baselines) {
        for (let i = 0; i < 2; i++) await expectSameBytes(server, request, answer.raw);
        results.push(await measure(server));
        await expectSameBytes(server, request, answer.raw);
      }
    } finally {
      await Promise.all(baselines.map((server) => server.stop()));
    }
    const [rawResult, mercuriusResult, apolloJitResult, apolloResult] = results as [LoadResult, LoadResult, LoadResult, LoadResult];

    const workload = `predictions ×${SYMBOLS}, warm caches, ${settings.connections} conns × ${settings.seconds} s`;
    const describe = (name: string, r: LoadResult) =>
      `${name}: ${r.requestsPerSecond.toFixed(0)} req/s (${r.requests} requests in ${r.seconds.toFixed(1)} s), latency mean ${r.latency.mean.toFixed(2)} / p50 ${r.latency.p50.toFixed(2)} / p90 ${r.latency.p90.toFixed(2)} / p99 ${r.latency.p99.toFixed(2)} / max ${r.latency.max.toFixed(1)} ms (autocannon's 1 ms histogram: p99 ${r.autocannonP99} ms), ${Math.round(r.bytesPerResponse)} bytes per response`;
    notes.push(
      describe('gateway', gw),
      describe('gateway, response cache hit', hits),
      hitCount,
      describe('raw node:http (a)', rawResult),
      describe('bare Apollo Server 5 (b)', apolloResult),
      describe('mercurius + graphql-jit (c)', mercuriusResult),
      describe('Apollo Server 5 + graphql-jit (d)', apolloJitResult),
      cache,
      `Load: autocannon ${autocannonVersion()} in the benchmark's own process (never a server's), ${settings.connections} keep-alive connections, no pipelining, after a ${settings.warmupSeconds} s warm-up of each server; every server in its own process, measured one at a time (the four baselines are started together and wait idle for their turn). Latencies are percentiles of every response time autocannon reported.`,
      `Gateway as deployed: NODE_ENV=production, compiled execution on (GRAPHQL_JIT default), JSON request log at level info (one line per request, part of the cost), in-process cache with default TTLs, PostgreSQL scratch database seeded with 60 symbols × 250 synthetic bars. Bare Apollo runs with its defaults, which include the cache-control plugin the gateway disables.`,
      `Baselines (b), (c) and (d) share one schema of the gateway's shape and answer from one static array, the gateway's own predictions (bench/lib/predictions-schema.ts). (c): mercurius ${packageVersion('mercurius')} on Fastify, jit: 1 (graphql-jit ${packageVersion('graphql-jit')}), otherwise defaults, plus an onSend hook appending the newline Apollo ends its answers with. (d): the same standalone Apollo Server as (b), executing through graphql-jit behind Apollo's gateway interface (each document compiled once, cached by its text), cache-control plugin disabled.`,
      `The answer is ${answer.raw.length} bytes; every baseline sent exactly those bytes before and after being measured (checked).`,
    );
    const servers: Array<[string, LoadResult]> = [
      ['Sibyl, response cache hit (production, JWT, PostgreSQL)', hits],
      ['Sibyl (production, JWT, warm caches, PostgreSQL)', gw],
      ['(a) raw node:http sending the bytes', rawResult],
      ['(c) mercurius + graphql-jit, static array', mercuriusResult],
      ['(d) Apollo Server 5 + graphql-jit (gateway executor), no cache-control', apolloJitResult],
      ['(b) bare Apollo Server 5, defaults, static array', apolloResult],
    ];
    const times = (r: LoadResult, base: LoadResult) => (r.requestsPerSecond / base.requestsPerSecond).toFixed(3);
    const table = {
      title: `every server on the same query (${workload}), one run`,
      headers: ['server', 'req/s', 'p50 / p99 ms', '× raw', '× bare Apollo', '× mercurius+jit'],
      rows: servers.map(([name, r]) => [
        name,
        r.requestsPerSecond.toLocaleString('en-US', { maximumFractionDigits: 0 }),
        `${r.latency.p50.toFixed(1)} / ${r.latency.p99.toFixed(1)}`,
        times(r, rawResult),
        times(r, apolloResult),
        times(r, mercuriusResult),
      ]),
    };
    return {
      tables: [table],
      rows: [
        row({
          bench: NAME,
          workload: `${workload}, response cache hit`,
          metric: 'throughput',
          figure: { value: hits.requestsPerSecond, unit: 'req/s' },
          baseline: { name: 'raw node:http', value: rawResult.requestsPerSecond, unit: 'req/s' },
          target: { text: '≥ 0.5× raw', meets: (_, ratio) => (ratio ?? 0) >= 0.5 },
        }),
        row({
          bench: NAME,
          workload: `${workload}, response cache hit`,
          metric: 'p99 latency',
          figure: { value: hits.latency.p99, unit: 'ms' },
          baseline: { name: 'raw node:http', value: rawResult.latency.p99, unit: 'ms' },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'throughput',
          figure: { value: gw.requestsPerSecond, unit: 'req/s' },
          baseline: { name: 'raw node:http', value: rawResult.requestsPerSecond, unit: 'req/s' },
          target: { text: '≥ 0.25× raw', meets: (_, ratio) => (ratio ?? 0) >= 0.25 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'throughput',
          figure: { value: gw.requestsPerSecond, unit: 'req/s' },
          baseline: { name: 'bare Apollo', value: apolloResult.requestsPerSecond, unit: 'req/s' },
          target: { text: '≥ 2× Apollo', meets: (_, ratio) => (ratio ?? 0) >= 2 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'throughput',
          figure: { value: gw.requestsPerSecond, unit: 'req/s' },
          baseline: { name: 'mercurius + graphql-jit', value: mercuriusResult.requestsPerSecond, unit: 'req/s' },
          target: { text: '≥ 1.0× mercurius + jit', meets: (_, ratio) => (ratio ?? 0) >= 1 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'throughput',
          figure: { value: gw.requestsPerSecond, unit: 'req/s' },
          baseline: { name: 'Apollo + graphql-jit', value: apolloJitResult.requestsPerSecond, unit: 'req/s' },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'p50 latency',
          figure: { value: gw.latency.p50, unit: 'ms' },
          baseline: { name: 'raw node:http', value: rawResult.latency.p50, unit: 'ms' },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'p99 latency',
          figure: { value: gw.latency.p99, unit: 'ms' },
          baseline: { name: 'raw node:http', value: rawResult.latency.p99, unit: 'ms' },
          target: { text: '≤ 10 ms', meets: (figure) => figure <= 10 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'p99 latency',
          figure: { value: gw.latency.p99, unit: 'ms' },
          baseline: { name: 'bare Apollo', value: apolloResult.latency.p99, unit: 'ms' },
        }),
      ],
      notes,
    };
  } finally {
    await seeded.release(); // a no-op the second time
    scratch.remove();
  }
}

/** Servers started in parallel; if one fails, the others are stopped before the error is thrown. */
async function startAll(starting: ReadonlyArray<Promise<ServerProcess>>): Promise<ServerProcess[]> {
  const settled = await Promise.allSettled(starting);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<ServerProcess>).value);
  await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
  throw failed.reason;
}

/** Fails unless `server` answers `request` with exactly `expected`, byte for byte. */
async function expectSameBytes(server: ServerProcess, request: JsonRequest, expected: string): Promise<void> {
  const { status, body } = await post(new URL(request.path, server.url), request.body);
  if (status === 200 && body === expected) return;
  const at = [...body].findIndex((c, i) => c !== expected[i]);
  throw new Error(
    `${server.name} does not send the gateway's bytes (status ${status}, ${body.length} vs ${expected.length} bytes, first difference at ${at}): …${body.slice(Math.max(0, at - 60), at + 60)}…`,
  );
}

function packageVersion(name: string): string {
  return (createRequire(import.meta.url)(`${name}/package.json`) as { version: string }).version;
}

function autocannonVersion(): string {
  return packageVersion('autocannon');
}

export default {
  name: NAME,
  title:
    'a warm 50-symbol predictions query under load, vs raw node:http, bare Apollo Server, mercurius + graphql-jit and Apollo + graphql-jit',
  run,
} satisfies Bench;
