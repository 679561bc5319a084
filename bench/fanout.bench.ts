import { readFileSync } from 'node:fs';
import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { runFanoutClient, type FanoutResult } from './lib/fanout-client.js';
import { scrape } from './lib/metrics.js';
import { createScratchDatabase } from './lib/postgres.js';
import { startGateway, startServer, type ServerProcess } from './lib/process.js';
import { median, summarize } from './lib/stats.js';

/**
 * Live-signal fan-out (bench issue §5): N graphql-ws subscribers of one instance, all subscribed to
 * the same symbol, clients in a separate process. For each new bar of the synthetic market: the time
 * from the bar to each subscriber's message (p50, p99) and to the last subscriber's, plus the
 * gateway's CPU and RSS while it fans out. Baseline: plain `ws` broadcasting the gateway's own
 * message bytes to as many sockets, on the same tick, measured by the same client.
 */
const NAME = 'fanout';
const QUERY =
  'subscription { signals(symbols: ["AAPL"]) { symbol asOf signal probability confidence quote { time close } model { version } } }';

interface Measured {
  readonly result: FanoutResult;
  readonly cpuPercent: number;
  readonly rssMb: number;
}

async function run(context: BenchContext) {
  const tickMs = context.smoke ? 500 : 2_000;
  const plan = context.smoke
    ? [{ subscribers: 50, ticks: 3 }]
    : [
        { subscribers: 1_000, ticks: 10 },
        { subscribers: 10_000, ticks: 10 },
      ];
  const rows: Row[] = [];
  const notes: string[] = [];
  // One gateway and one baseline server for every step (start-up is slow on a busy machine); each
  // step's connections are closed before the next one opens, so RSS is the high-water mark so far.
  // Smoke runs put the gateway on an empty PostgreSQL scratch database (no stored bars: the synthetic
  // market, as on PGlite) because creating a fresh PGlite data directory takes seconds; the full run
  // keeps the embedded default it reports.
  const scratch = context.smoke ? await createScratchDatabase('fanout') : undefined;
  let gateway: ServerProcess;
  try {
    gateway = await startGateway({
      env: {
        SYNTHETIC_TICK_MS: String(tickMs),
        SIGNALS_INTERVAL_MS: '0',
        WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '1',
        ...(scratch && { DATABASE_URL: scratch.url }),
      },
      timeoutMs: 180_000,
    });
  } catch (error) {
    await scratch?.drop();
    throw error;
  }
  let baseline: ServerProcess | undefined;
  try {
    for (const step of plan) {
      context.log(`gateway: ${step.subscribers} subscribers, a bar every ${tickMs} ms, ${step.ticks} bars`);
      let viaGateway = await measure(gateway, {
        url: `${gateway.url.replace('http', 'ws')}/graphql`,
        subscribers: step.subscribers,
        query: QUERY,
        ticks: step.ticks,
        timeoutMs: 180_000,
      });
      viaGateway = { ...viaGateway, rssMb: ((await scrape(gateway.url)).get('process_resident_memory_bytes') ?? NaN) / 2 ** 20 };
      baseline ??= await startServer('raw ws', 'bench/lib/raw-ws-server.ts', {
        BENCH_PAYLOAD: viaGateway.result.sample,
        BENCH_TICK_MS: String(tickMs),
      });
      context.log(`raw ws: ${step.subscribers} subscribers`);
      const viaRaw = await measure(baseline, {
        url: `ws://127.0.0.1:${baseline.port}`,
        subscribers: step.subscribers,
        ticks: step.ticks,
        timeoutMs: 180_000,
      });
      const g = summarize(viaGateway.result.latencies);
      const r = summarize(viaRaw.result.latencies);
      const workload = `${step.subscribers.toLocaleString('en-US')} subscribers, 1 symbol`;
      const base = (value: number, unit: string) => ({ name: 'raw ws', value, unit });
      const is10k = step.subscribers >= 10_000;
      rows.push(
        row({ bench: NAME, workload, metric: 'bar → subscriber p50', figure: { value: g.p50, unit: 'ms' }, baseline: base(r.p50, 'ms') }),
        row({
          bench: NAME,
          workload,
          metric: 'bar → subscriber p99',
          figure: { value: g.p99, unit: 'ms' },
          baseline: base(r.p99, 'ms'),
          ...(is10k && { target: { text: 'p99 ≤ 100 ms', meets: (v: number) => v <= 100 } }),
        }),
        row({
          bench: NAME,
          workload,
          metric: 'bar → last subscriber (median bar)',
          figure: { value: median(viaGateway.result.lastSubscriberMs), unit: 'ms' },
          baseline: base(median(viaRaw.result.lastSubscriberMs), 'ms'),
        }),
        row({
          bench: NAME,
          workload,
          metric: 'server CPU while fanning out',
          figure: { value: viaGateway.cpuPercent, unit: '% core' },
          baseline: base(viaRaw.cpuPercent, '% core'),
        }),
        row({
          bench: NAME,
          workload,
          metric: 'server RSS',
          figure: { value: viaGateway.rssMb, unit: 'MB' },
          baseline: base(viaRaw.rssMb, 'MB'),
        }),
      );
      context.log(
        `${workload}: p50 ${g.p50} / p99 ${g.p99} ms (raw ws ${r.p50} / ${r.p99} ms), CPU ${viaGateway.cpuPercent.toFixed(0)}%, RSS ${viaGateway.rssMb.toFixed(0)} MB`,
      );
      notes.push(
        `${workload}: ${viaGateway.result.completeTicks} bars measured on the gateway (${viaRaw.result.completeTicks} on raw ws), a bar every ${tickMs} ms; connecting and subscribing took ${(viaGateway.result.connectMs / 1000).toFixed(1)} s; max bar → subscriber ${g.max.toFixed(1)} ms (raw ws ${r.max.toFixed(1)} ms).` +
          (viaGateway.result.errors.length ? ` Client errors: ${viaGateway.result.errors.join('; ')}` : ''),
      );
    }
  } finally {
    await baseline?.stop();
    await gateway.stop();
    await scratch?.drop();
  }
  notes.push(
    'Latency = receive time in the client process − the bar’s asOf (the synthetic market stamps a new bar with the wall-clock time it makes it; both processes read the same clock), so the gateway figure covers the whole path: market tick, the monitor’s one inference run, the history write it waits for, publish, per-subscriber GraphQL execution, serialization and the socket. Raw ws sends the gateway’s captured message with only asOf replaced, to as many sockets, on the same tick: the cost of the bytes alone.',
    `One subscription per connection (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION=1), all to AAPL on direction-1d; the client opens the connections 250 at a time and starts measuring once every subscriber has received one bar. CPU is the server process’s user+system time over the measured bars ÷ wall time (100% = one core); RSS at the end of the measurement. Gateway: NODE_ENV=production, ${context.smoke ? 'an empty PostgreSQL scratch database (smoke run)' : 'embedded PGlite'}, synthetic market. The client runs on the same 2 cores, so it competes with the server.`,
  );
  return { rows, notes };
}

/** Runs the client against `server`, reading the server's CPU time over the measured part. */
async function measure(server: ServerProcess, job: Parameters<typeof runFanoutClient>[0]): Promise<Measured> {
  let cpuAtReady = 0;
  let readyAt = 0;
  const result = await runFanoutClient(job, () => {
    cpuAtReady = cpuSeconds(server.pid);
    readyAt = performance.now();
  });
  const cpuPercent = (100 * (cpuSeconds(server.pid) - cpuAtReady)) / ((performance.now() - readyAt) / 1000);
  if (result.completeTicks === 0) throw new Error(`${server.name}: no bar reached every subscriber (${result.errors.join('; ')})`);
  return { result, cpuPercent, rssMb: rssMb(server.pid) };
}

/** User + system CPU seconds of a process, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

export default {
  name: NAME,
  title: 'Live-signal fan-out: new bar to every graphql-ws subscriber (1k, 10k) vs raw ws broadcasting the same bytes',
  run,
} satisfies Bench;
