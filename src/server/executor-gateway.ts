import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import { printSchema, type GraphQLSchema } from 'graphql';
import type { Context } from '../context/context.js';
import type { OperationExecutor } from './compiled-execution.js';

type Gateway = ApolloServerOptionsWithGateway<Context>['gateway'];

/**
 * Apollo Server with our executor: Apollo Server 5 has one supported way to replace how operations
 * execute while keeping the rest of its pipeline (parsing and its document cache, validation rules,
 * every plugin hook including didResolveOperation and executionDidStart, error formatting and masking,
 * the landing page), its gateway interface. This "gateway" hands Apollo our schema once and executes
 * each operation Apollo has parsed, validated and admitted with `executor` (compiled-execution.ts).
 *
 * What Apollo then does not do itself: per-field plugin hooks (`willResolveField`), which no plugin
 * of ours uses (Apollo's cache-control plugin, the one that would, is disabled), and incremental
 * delivery (@defer/@stream), which the schema does not offer.
 */
export function executorGateway(schema: GraphQLSchema, executor: OperationExecutor): Gateway {
  const listeners = new Set<Parameters<Gateway['onSchemaLoadOrUpdate']>[0]>();
  return {
    onSchemaLoadOrUpdate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async load() {
      // The SDL is only read by Apollo's usage reporting (not configured); printed once at start.
      const coreSupergraphSdl = printSchema(schema);
      for (const listener of listeners) listener({ apiSchema: schema, coreSupergraphSdl });
      return {
        executor: async (request) =>
          executor.execute({
            document: request.document,
            operationName: request.operationName,
            variables: request.request.variables,
            context: request.context,
          }),
      };
    },
    async stop() {},
  };
}
