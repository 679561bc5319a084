import { WebSocketServer } from 'ws';

/**
 * Baseline of the fan-out benchmark: plain `ws` broadcasting one prebuilt message (the gateway's own
 * message, captured by the client) to every connection every BENCH_TICK_MS, with only its `asOf`
 * replaced by the time of the tick. No GraphQL, no inference, no history, no pub/sub: what this
 * machine needs to push those bytes to that many sockets.
 */
const template = process.env.BENCH_PAYLOAD!;
const tickMs = Number(process.env.BENCH_TICK_MS ?? 1000);
const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
server.on('listening', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: `raw ws listening on ws://127.0.0.1:${port}`, port })}\n`);
});
const timer = setInterval(() => {
  const message = template.replace(/"asOf":"[^"]+"/, `"asOf":"${new Date().toISOString()}"`);
  for (const client of server.clients) client.send(message);
}, tickMs);
process.on('SIGTERM', () => {
  clearInterval(timer);
  for (const client of server.clients) client.terminate();
  server.close(() => process.exit(0));
});
