import { spawn } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/**
 * Sends many HTTP POSTs so they truly arrive together, from a separate process: every connection is
 * opened first, then every request is written in one synchronous loop. Both halves matter. A fetch()
 * loop sends requests milliseconds apart; and a client in the server's own process, however it writes,
 * is seen by the server one request per event-loop turn (200 requests over 200 turns, against up to 86
 * in one turn from another process), so the server would see a queue, not concurrency.
 *
 * Used by the tests (`burstPost`) and by bench/batching (`burst`, which also times every request and
 * runs several rounds against several servers per process, so the process start is paid once).
 */

export interface BurstResponse {
  readonly status: number;
  /** The response body, de-chunked. */
  readonly text: string;
  /** From this request's write to the end of its response, in ms (connection set-up excluded). */
  readonly ms: number;
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
  /** The Authorization header of every request, if any. */
  readonly authorization?: string;
}

interface BurstJob {
  readonly targets: readonly BurstTarget[];
  readonly rounds: number;
  /** Quiet time between bursts, so one burst's tail does not overlap the next. */
  readonly pauseMs: number;
}

/** POSTs the JSON `bodies` to one server at once; resolves with each response's status and JSON body, in order. */
export async function burstPost(port: number, path: string, bodies: readonly unknown[]): Promise<Array<{ status: number; body: unknown }>> {
  const [[round]] = (await burst([{ port, path, bodies: bodies.map((b) => JSON.stringify(b)) }], { rounds: 1 })) as [[BurstRound]];
  return round.responses.map(({ status, text }) => ({ status, body: text ? JSON.parse(text) : undefined }));
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

async function oneRound(target: BurstTarget): Promise<BurstRound> {
  const sockets = await Promise.all(
    target.bodies.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(target.port, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
          socket.setNoDelay(true);
        }),
    ),
  );
  // Requests are serialized before the clock starts, so the write loop is only socket writes.
  const authorization = target.authorization === undefined ? '' : `Authorization: ${target.authorization}\r\n`;
  const requests = target.bodies.map(
    (body) =>
      `POST ${target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${authorization}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
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
          resolve({ ...parseResponse(Buffer.concat(chunks).toString()), ms });
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

function parseResponse(raw: string): { status: number; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  const text = raw.slice(split + 4);
  return { status: Number(head.split(' ')[1]), text: /transfer-encoding: chunked/i.test(head) ? dechunk(text) : text };
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
