import { ApolloServer, type ApolloServerOptionsWithGateway, type BaseContext } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSchema, execute, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { PREDICTIONS_TYPE_DEFS, staticPredictions } from './predictions-schema.js';

/**
 * Baseline (d) of gateway-overhead: the same standalone Apollo Server 5 as bare Apollo (b), with the
 * same schema and static array, but executing through graphql-jit. Apollo's gateway interface is its
 * one supported way to replace execution while keeping the rest of the request pipeline (parsing,
 * validation, plugins, error formatting): the "gateway" hands Apollo the schema and an executor, and
 * the executor compiles each document once, cached by its source text, then runs the compiled
 * function. Cache-control is off (the gateway disables Apollo's too), so (b) → (d) is the executor and
 * that plugin, nothing else.
 *
 * Run as its own process: BENCH_PREDICTIONS_FILE names a JSON file holding the predictions array.
 */
type Gateway = ApolloServerOptionsWithGateway<BaseContext>['gateway'];
type SchemaListener = Parameters<Gateway['onSchemaLoadOrUpdate']>[0];

const predictions = staticPredictions();
const schema: GraphQLSchema = buildSchema(PREDICTIONS_TYPE_DEFS);
schema.getQueryType()!.getFields().predictions!.resolve = () => predictions;

/** Compiled documents by source text; a document graphql-jit cannot compile is executed by graphql-js. */
const compiled = new Map<string, CompiledQuery | undefined>();
const listeners = new Set<SchemaListener>();
const gateway: Gateway = {
  onSchemaLoadOrUpdate(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  async load() {
    for (const listener of listeners) listener({ apiSchema: schema, coreSupergraphSdl: PREDICTIONS_TYPE_DEFS });
    return {
      executor: async (request) => {
        const key = `${request.operationName ?? ''}\n${request.source}`;
        let query = compiled.get(key);
        if (!compiled.has(key)) {
          const result = compileQuery(schema, request.document, request.operationName ?? undefined);
          query = isCompiledQuery(result) ? result : undefined;
          compiled.set(key, query);
        }
        const variables = request.request.variables ?? {};
        if (query) return (await query.query(undefined, request.context, variables)) as ExecutionResult;
        return execute({
          schema,
          document: request.document,
          contextValue: request.context,
          variableValues: variables,
          operationName: request.operationName,
        });
      },
    };
  },
  async stop() {},
};

const server = new ApolloServer({ gateway, plugins: [ApolloServerPluginCacheControlDisabled()] });
const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
const port = Number(new URL(url).port);
process.stdout.write(`${JSON.stringify({ msg: `Apollo Server + graphql-jit listening on ${url}`, port })}\n`);
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
