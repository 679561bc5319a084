import Fastify from 'fastify';
import mercurius from 'mercurius';
import { PREDICTIONS_TYPE_DEFS, staticPredictions } from './predictions-schema.js';

/**
 * Baseline (c) of gateway-overhead: mercurius with graphql-jit (`jit: 1`: every document compiled
 * after its first execution), the fastest common Node GraphQL server, answering the benchmarked query
 * from the same static array and schema as bare Apollo. Otherwise its defaults (its parsed-document
 * LRU, no GraphiQL, no logger).
 *
 * One change to what it sends: Apollo ends every JSON answer with a newline and mercurius (Fastify's
 * serializer) does not, so an onSend hook appends one; then every server in the benchmark sends the
 * same bytes, which the benchmark checks. Appending a byte to a 10 KB string is noise next to a request.
 *
 * Run as its own process: BENCH_PREDICTIONS_FILE names a JSON file holding the predictions array.
 */
const predictions = staticPredictions();
const app = Fastify({ logger: false });
await app.register(mercurius, {
  schema: PREDICTIONS_TYPE_DEFS,
  resolvers: { Query: { predictions: () => predictions } },
  jit: 1,
});
app.addHook('onSend', (_request, _reply, payload, done) => {
  done(null, typeof payload === 'string' ? `${payload}\n` : payload);
});
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(`${JSON.stringify({ msg: `mercurius + graphql-jit listening on http://127.0.0.1:${port}`, port })}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
