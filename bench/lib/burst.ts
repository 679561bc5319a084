import { spawn } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BENCH_AUTHORIZATION } from './auth.js';

/**
 * Sends N HTTP POSTs so they truly arrive together, from a separate process. Both halves matter:
 * every connection is opened first and then every request is written in one synchronous loop (a
 * fetch() loop spreads requests over milliseconds); and the client is not the server's process (a
 * same-process client, however it writes, is admitted one request per event-loop turn; measured: 200
 * requests over 200 turns, against up to 86 in one turn from another process). The technique is that of
 * test/helpers/burst.ts; this copy also times every request and runs several rounds against several
 * servers per process, so the process start is paid once.
 */
export interface BurstResponse {
  readonly status: number;
  /** From this request's write to the end of its response, in ms (connection set-up excluded). */
  readonly ms: number;
  /** HTTP 200 with `data` and no `errors` in the JSON body. */
  readonly ok: boolean;
  /** The start of the body when not ok, for the error message. */
  readonly sample?: string;
}

export interface BurstRound {
  readonly responses: readonly BurstResponse[];
  /** From the first write to the last response, in ms. */
  readonly wallMs: number;
}

/** One server to burst: where, and the request bodies sent to it together. */
export interface BurstTarget {
  readonly port: number;
  readonly path: string;
  readonly bodies: readonly string[];
}

interface BurstJob {
  readonly targets: readonly BurstTarget[];
  readonly rounds: number;
  /** Quiet time between bursts, so one burst's tail does not overlap the next. */
  readonly pauseMs: number;
}

/**
 * Runs `rounds` bursts against each target from a child process, interleaved (round 1 on every
 * target, then round 2…) so that anything else happening on the machine meanwhile hits every target
 * alike. Resolves with each target's rounds, in target order.
 */
export async function burst(targets: readonly BurstTarget[], options: { rounds: number; pauseMs?: number }): Promise<BurstRound[][]> {
  const job: BurstJob = { targets, rounds: options.rounds, pauseMs: options.pauseMs ?? 200 };
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let errors = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  child.stdin.end(JSON.stringify(job));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`burst client exited with ${code}: ${errors.slice(-2000)}`);
  return JSON.parse(output) as BurstRound[][];
}

async function runJob(job: BurstJob): Promise<BurstRound[][]> {
  const results: BurstRound[][] = job.targets.map(() => []);
  for (let round = 0; round < job.rounds; round++) {
    for (const [i, target] of job.targets.entries()) {
      if (round + i > 0) await new Promise((resolve) => setTimeout(resolve, job.pauseMs));
      results[i]!.push(await oneRound(target));
    }
  }
  return results;
}

async function oneRound(job: BurstTarget): Promise<BurstRound> {
  const sockets = await Promise.all(
    job.bodies.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(job.port, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
          socket.setNoDelay(true);
        }),
    ),
  );
  // Requests are serialized before the clock starts, so the write loop is only socket writes.
  const requests = job.bodies.map(
    (body) =>
      `POST ${job.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: ${BENCH_AUTHORIZATION}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  const sent: number[] = new Array(sockets.length);
  const responses = sockets.map(
    (socket, i) =>
      new Promise<BurstResponse>((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.once('error', reject);
        socket.once('end', () => {
          const ms = performance.now() - sent[i]!;
          resolve(parseResponse(Buffer.concat(chunks).toString(), ms));
        });
      }),
  );
  const first = performance.now();
  sockets.forEach((socket, i) => {
    sent[i] = performance.now();
    socket.write(requests[i]!);
  });
  const done = await Promise.all(responses);
  const wallMs = Math.max(...done.map((r, i) => sent[i]! + r.ms)) - first;
  return { responses: done, wallMs };
}

function parseResponse(raw: string, ms: number): BurstResponse {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  let text = raw.slice(split + 4);
  if (/transfer-encoding: chunked/i.test(head)) text = dechunk(text);
  const status = Number(head.split(' ')[1]);
  let ok = false;
  try {
    const body = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
    ok = status === 200 && body.data != null && !body.errors?.length;
  } catch {
    ok = false;
  }
  return ok ? { status, ms, ok } : { status, ms, ok, sample: text.slice(0, 300) };
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const newline = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, newline), 16);
    if (!size) return out;
    out += rest.slice(newline + 2, newline + 2 + size);
    rest = rest.slice(newline + 2 + size + 2);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let input = '';
  process.stdin.on('data', (chunk: Buffer) => (input += chunk.toString()));
  process.stdin.on('end', async () => {
    const rounds = await runJob(JSON.parse(input) as BurstJob);
    process.stdout.write(JSON.stringify(rounds));
  });
}
