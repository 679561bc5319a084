import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus series Sibyl exports (DESIGN.md §5: the names are binding). One registry per
 * gateway instance rather than prom-client's global one, so tests can run several in one process.
 * A metric is added here when code that feeds it from real work exists.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    graphqlRequestSeconds: new Histogram({
      name: 'sibyl_graphql_request_seconds',
      help: 'GraphQL operation duration, from parsed request to response, by operation type',
      labelNames: ['operation_type'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    graphqlErrorsTotal: new Counter({
      name: 'sibyl_graphql_errors_total',
      help: 'GraphQL errors returned to clients, by extensions.code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
