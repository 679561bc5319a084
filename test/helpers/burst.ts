import net from 'node:net';

/**
 * Sends many HTTP POSTs so they truly arrive together: every connection is opened first, then every
 * request is written in one synchronous loop. (A fetch() loop in the test's own process sends them a
 * few milliseconds apart, so the server would see a queue, not concurrency.) Resolves with each
 * response's status and JSON body, in order.
 */
export async function burstPost(port: number, path: string, bodies: readonly unknown[]): Promise<Array<{ status: number; body: unknown }>> {
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
