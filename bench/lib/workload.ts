import type { JsonRequest } from './load.js';

/**
 * The GraphQL operations the benchmarks send: what the web app asks for a watch list (every scalar of
 * a prediction, its interval, model and quote), as in test/operations/predictions.graphql. Fields
 * that resolve elsewhere (history, explanation) are left out until they exist.
 */
const PREDICTION_FIELDS = `
    symbol strategy horizon asOf signal probability confidence expectedReturn stale featuresHash
    interval(level: 0.95) { level low high }
    model { strategy version active }
    quote { symbol time close volume source }`;

export const PREDICTIONS_QUERY = `query Predictions($symbols: [String!]!) {
  predictions(symbols: $symbols) {${PREDICTION_FIELDS}
  }
}`;

export const PREDICTION_QUERY = `query Prediction($symbol: String!) {
  prediction(symbol: $symbol) {${PREDICTION_FIELDS}
  }
}`;

export function predictionsRequest(symbols: readonly string[]): JsonRequest {
  return { path: '/graphql', body: JSON.stringify({ operationName: 'Predictions', query: PREDICTIONS_QUERY, variables: { symbols } }) };
}

export function predictionRequest(symbol: string): JsonRequest {
  return { path: '/graphql', body: JSON.stringify({ operationName: 'Prediction', query: PREDICTION_QUERY, variables: { symbol } }) };
}

/** Fails unless a `predictions` answer has one non-null prediction per symbol and no error. */
export function expectPredictions(count: number): (body: string) => void {
  return (body) => {
    const parsed = JSON.parse(body) as { data?: { predictions?: unknown[] }; errors?: unknown[] };
    const list = parsed.data?.predictions;
    if (parsed.errors?.length || !list || list.length !== count || list.some((p) => p === null)) {
      throw new Error(`expected ${count} predictions and no error, got: ${body.slice(0, 300)}`);
    }
  };
}
