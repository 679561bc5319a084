import { readFileSync } from 'node:fs';
import http from 'node:http';

/**
 * Baseline (a) of gateway-overhead: plain node:http answering every request with the gateway's own
 * response bytes, captured once. It reads the request body (a real server has to) and does nothing
 * else, so it is the ceiling for this payload on this machine: HTTP parsing and writing only.
 *
 * Run as its own process: BENCH_BODY_FILE names the file holding the bytes to serve.
 */
const body = readFileSync(process.env.BENCH_BODY_FILE!);
const server = http.createServer((request, response) => {
  request.on('data', () => undefined);
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
    response.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ msg: `raw node:http listening on http://127.0.0.1:${port}`, port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
