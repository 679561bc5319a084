import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import { startTestGateway } from '../helpers/gateway.js';
import { stackName } from '../helpers/services.js';

/**
 * Opens a graphql-ws socket by hand and then never reads or answers anything: the peer a stopping
 * gateway cannot finish a close handshake with (a frozen browser tab, a half-dead network path).
 */
async function silentWebSocket(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    [
      'GET /graphql HTTP/1.1',
      `Host: ${hostname}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Protocol: graphql-transport-ws',
      '',
      '',
    ].join('\r\n'),
  );
  const head = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  assert.match(head, /^HTTP\/1\.1 101 /, 'the upgrade is accepted');
  socket.pause(); // never read again, never send a close frame back
  return socket;
}

test(`stop ends within its budget when a WebSocket peer never answers the close handshake (${stackName})`, async () => {
  const shutdownMs = 1_000;
  const server = await startTestGateway({ SHUTDOWN_TIMEOUT_MS: String(shutdownMs) });
  let socket: net.Socket | undefined;
  try {
    socket = await silentWebSocket(server.url);
    const closedByServer = new Promise<void>((resolve) => socket!.once('close', () => resolve()));
    const started = performance.now();
    await server.gateway.stop(); // resolves: a drain that runs out cuts what is left, it does not fail the stop
    const tookMs = performance.now() - started;
    // The drain share is 40% of SHUTDOWN_TIMEOUT_MS; the other close steps each have their own deadlines.
    assert.ok(tookMs < shutdownMs + 1_500, `stop took ${Math.round(tookMs)} ms with a ${shutdownMs} ms budget`);
    socket.resume();
    await closedByServer; // the server cut the socket rather than leaving it open
  } finally {
    socket?.destroy();
    await server.database.drop();
  }
});
