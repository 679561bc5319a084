import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { PREDICTIONS_TYPE_DEFS, staticPredictions } from './predictions-schema.js';

/**
 * Baseline (b) of gateway-overhead: Apollo Server 5 as its README starts it (standalone, default
 * settings: no plugins added or disabled), with a schema of the same shape as the gateway's for the
 * benchmarked query, answering it from a static array: the gateway's own predictions, captured once.
 * What separates the gateway from this is everything the gateway does beyond executing GraphQL:
 * Fastify, loaders, caches, metrics and logs.
 *
 * Run as its own process: BENCH_PREDICTIONS_FILE names a JSON file holding the predictions array.
 */
const predictions = staticPredictions();
const server = new ApolloServer({ typeDefs: PREDICTIONS_TYPE_DEFS, resolvers: { Query: { predictions: () => predictions } } });
const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
const port = Number(new URL(url).port);
process.stdout.write(`${JSON.stringify({ msg: `bare Apollo Server listening on ${url}`, port })}\n`);
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
