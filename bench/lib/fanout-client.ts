import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { BENCH_AUTHORIZATION } from './auth.js';

/**
 * The subscriber side of the fan-out benchmark, run in its own process (the reason is the one in
 * burst.ts: a client sharing the server's event loop measures a queue, and bills its CPU to the
 * server). It opens `subscribers` WebSockets, each with one subscription (graphql-ws protocol) or
 * none (raw: the server just broadcasts), waits until every one has received a message (so all are
 * attached), then records, for each of the next `ticks` bars, when each subscriber received it.
 *
 * Latency is "receive time − the bar's time", the bar's time being the `asOf` in the message: the
 * synthetic market stamps a new bar with the wall-clock time it is created, and both processes read
 * the same clock. So it covers everything from the new bar to the client: inference, the history
 * write, publish, fan-out, serialization and the socket.
 */
export interface FanoutJob {
  readonly url: string;
  readonly subscribers: number;
  /** graphql-ws subscribe payload; absent: raw mode, no handshake. */
  readonly query?: string;
  readonly ticks: number;
  readonly timeoutMs: number;
}

export interface FanoutResult {
  /** Every subscriber's latency for every measured bar, ms. */
  readonly latencies: number[];
  /** Per bar: from the bar to its LAST subscriber's message, ms. */
  readonly lastSubscriberMs: number[];
  /** Bars measured completely (every subscriber got it). */
  readonly completeTicks: number;
  readonly connectMs: number;
  /** One message as received, for the baseline to send the same bytes. */
  readonly sample: string;
  readonly errors: string[];
}

export function runFanoutClient(job: FanoutJob, onReady?: () => void): Promise<FanoutResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('READY\n')) {
      output = output.replace('READY\n', '');
      onReady?.();
    }
  });
  child.stdin.end(JSON.stringify(job));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`fan-out client exited with ${code}: ${errors.slice(-2000)}`));
      try {
        resolve(JSON.parse(output) as FanoutResult);
      } catch {
        reject(new Error(`fan-out client answered no result: ${output.slice(0, 500)} ${errors.slice(-1000)}`));
      }
    });
  });
}

const AS_OF = /"asOf":"([^"]+)"/;

async function clientMain(job: FanoutJob): Promise<FanoutResult> {
  const started = performance.now();
  const sockets: WebSocket[] = [];
  const errors: string[] = [];
  const firstSeen = new Set<number>();
  let sample = '';
  let measuring = false;
  let measureAfter = 0;
  const ticks = new Map<number, { count: number; latencies: number[] }>();
  let resolveAllAttached: () => void = () => undefined;
  const allAttached = new Promise<void>((resolve) => (resolveAllAttached = resolve));
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let completeTicks = 0;

  const onMessage = (index: number, data: string) => {
    const received = Date.now();
    if (job.query && !data.includes('"next"')) {
      if (data.includes('"error"')) errors.push(data.slice(0, 300));
      return;
    }
    const match = AS_OF.exec(data);
    if (!match) return;
    if (!sample) sample = data;
    if (!firstSeen.has(index)) {
      firstSeen.add(index);
      if (firstSeen.size === job.subscribers) {
        measureAfter = Date.parse(match[1]!);
        measuring = true;
        resolveAllAttached();
      }
      return;
    }
    if (!measuring) return;
    const time = Date.parse(match[1]!);
    if (time <= measureAfter) return;
    let tick = ticks.get(time);
    if (!tick) {
      if (ticks.size >= job.ticks) return;
      ticks.set(time, (tick = { count: 0, latencies: [] }));
    }
    tick.count++;
    tick.latencies.push(received - time);
    if (tick.count === job.subscribers && ++completeTicks === job.ticks) resolveDone();
  };

  // Opened a few hundred at a time: thousands of simultaneous handshakes would overflow the accept queue.
  const open = (index: number) =>
    new Promise<void>((resolve) => {
      const socket = new WebSocket(job.url, job.query ? 'graphql-transport-ws' : undefined);
      sockets.push(socket);
      socket.on('error', (error) => {
        errors.push(error.message);
        resolve();
      });
      socket.on('message', (raw: Buffer) => {
        const data = raw.toString();
        if (job.query && data.includes('"connection_ack"')) {
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: job.query } }));
          resolve();
          return;
        }
        onMessage(index, data);
      });
      socket.on('open', () => {
        if (job.query) socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: BENCH_AUTHORIZATION } }));
        else resolve();
      });
    });
  for (let i = 0; i < job.subscribers; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, job.subscribers - i) }, (_, k) => open(i + k)));
  }
  const timeout = setTimeout(() => resolveDone(), job.timeoutMs);
  await Promise.race([allAttached, done]);
  const connectMs = performance.now() - started;
  process.stdout.write('READY\n');
  await done;
  clearTimeout(timeout);
  for (const socket of sockets) socket.terminate();
  const complete = [...ticks.values()].filter((t) => t.count === job.subscribers);
  if (firstSeen.size < job.subscribers) errors.push(`only ${firstSeen.size} of ${job.subscribers} subscribers received anything`);
  return {
    latencies: complete.flatMap((t) => t.latencies),
    lastSubscriberMs: complete.map((t) => Math.max(...t.latencies)),
    completeTicks: complete.length,
    connectMs,
    sample,
    errors: errors.slice(0, 5),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let input = '';
  process.stdin.on('data', (chunk: Buffer) => (input += chunk.toString()));
  process.stdin.on('end', () => {
    clientMain(JSON.parse(input) as FanoutJob).then(
      (result) => {
        // Exit only once the pipe has taken everything: process.exit() would drop a pending write.
        process.stdout.write(JSON.stringify(result), () => process.exit(0));
      },
      (error: unknown) => {
        process.stderr.write(`${String(error)}\n`);
        process.exit(1);
      },
    );
  });
}
