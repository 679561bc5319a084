import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Sends many HTTP POSTs so they truly arrive together, from a separate process: every connection is
 * opened first, then every request is written in one synchronous loop. Both halves matter. A fetch()
 * loop sends requests milliseconds apart; and a client in the server's own process, however it writes,
 * is seen by the server one request per event-loop turn (measured: 200 requests over 200 turns, against
 * up to 86 in one turn from another process), so the server would see a queue, not concurrency.
 * Resolves with each response's status and JSON body, in order.
 */
export async function burstPost(port: number, path: string, bodies: readonly unknown[]): Promise<Array<{ status: number; body: unknown }>> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), String(port), path], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(JSON.stringify(bodies));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`burst client exited with ${code}`);
  return JSON.parse(output) as Array<{ status: number; body: unknown }>;
}

/** The client half, run in the child process. */
async function burstFromThisProcess(
  port: number,
  path: string,
  bodies: readonly unknown[],
): Promise<Array<{ status: number; body: unknown }>> {
  const sockets = await Promise.all(
    bodies.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  const responses = sockets.map(
    (socket) =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        let raw = '';
        socket.on('data', (chunk) => (raw += chunk.toString()));
        socket.once('error', reject);
        socket.once('end', () => {
          const [head = '', ...rest] = raw.split('\r\n\r\n');
          const status = Number(head.split(' ')[1]);
          let text = rest.join('\r\n\r\n');
          if (/transfer-encoding: chunked/i.test(head)) text = dechunk(text);
          resolve({ status, body: text ? JSON.parse(text) : undefined });
        });
      }),
  );
  bodies.forEach((body, i) => {
    const json = JSON.stringify(body);
    sockets[i]!.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  });
  return Promise.all(responses);
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
    const results = await burstFromThisProcess(Number(process.argv[2]), process.argv[3]!, JSON.parse(input) as unknown[]);
    process.stdout.write(JSON.stringify(results));
  });
}
