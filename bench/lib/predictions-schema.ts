import { readFileSync } from 'node:fs';

/**
 * What the gateway-overhead baselines (b), (c) and (d) share: a schema of the same shape as the
 * gateway's for the benchmarked query, and the gateway's own predictions, captured once, as the static
 * array they answer from. One definition, so the baselines differ only in the server that executes it.
 *
 * BENCH_PREDICTIONS_FILE names a JSON file holding the predictions array.
 */
export const PREDICTIONS_TYPE_DEFS = `#graphql
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

export function staticPredictions(): unknown[] {
  return JSON.parse(readFileSync(process.env.BENCH_PREDICTIONS_FILE!, 'utf8')) as unknown[];
}
