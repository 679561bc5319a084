import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

/**
 * Baseline (b) of gateway-overhead: Apollo Server 5 as its README starts it (standalone, default
 * settings: no plugins added or disabled), with a schema of the same shape as the gateway's for the
 * benchmarked query, answering it from a static array: the gateway's own 50 predictions, captured once.
 * What separates the gateway from this is everything the gateway does beyond executing GraphQL:
 * Fastify, loaders, caches, metrics and logs.
 *
 * Run as its own process: BENCH_PREDICTIONS_FILE names a JSON file holding the predictions array.
 */
const predictions = JSON.parse(readFileSync(process.env.BENCH_PREDICTIONS_FILE!, 'utf8')) as unknown[];

const typeDefs = `#graphql
  enum Signal { BUY SELL HOLD }
  type PriceInterval { level: Float!  low: Float!  high: Float! }
  type ModelVersion { strategy: String!  version: String!  active: Boolean! }
  type Quote { symbol: String!  time: String!  close: Float!  volume: Float!  source: String! }
  type Prediction {
    symbol: String!  strategy: String!  horizon: String!  asOf: String!  signal: Signal!
    probability: Float!  confidence: Float!  expectedReturn: Float  stale: Boolean!  featuresHash: String!
    interval(level: Float = 0.95): PriceInterval!
    model: ModelVersion!
    quote: Quote!
  }
  type Query { predictions(symbols: [String!]!, strategy: String): [Prediction]! }
`;

const server = new ApolloServer({ typeDefs, resolvers: { Query: { predictions: () => predictions } } });
const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
const port = Number(new URL(url).port);
process.stdout.write(`${JSON.stringify({ msg: `bare Apollo Server listening on ${url}`, port })}\n`);
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
