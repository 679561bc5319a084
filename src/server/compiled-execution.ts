import {
  execute,
  GraphQLError,
  print,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../infra/logger/logger.js';

/** What executes one validated query or mutation, for both transports (Apollo over HTTP, graphql-ws). */
export interface OperationExecutor {
  /** `graphql-jit` when operations are compiled (falling back per document), `graphql-js` when off. */
  readonly engine: Engine;
  execute(request: ExecutionRequest): Promise<ExecutionResult> | ExecutionResult;
}

export type Engine = 'graphql-jit' | 'graphql-js';

export interface ExecutionRequest {
  /** Parsed and validated (the transports do both before anything executes). */
  readonly document: DocumentNode;
  readonly operationName: string | null | undefined;
  /** As the client sent them: coerced here, as graphql-js's `execute` does. */
  readonly variables: Readonly<Record<string, unknown>> | null | undefined;
  readonly context: object;
}

export interface ExecutorOptions {
  /** GRAPHQL_JIT: compile operations, or run every one with graphql-js. */
  readonly jit: boolean;
  /** GRAPHQL_JIT_CACHE_SIZE: compiled operations kept (least recently used dropped first). */
  readonly cacheSize: number;
  readonly logger: Logger;
  /** Called once per document compiled or found not compilable (metrics). */
  readonly onCompile?: (outcome: 'compiled' | 'not_compiled') => void;
}

/** A document graphql-jit could not compile: remembered, so it is not retried on every request. */
const NOT_COMPILED = Symbol('not compiled');

/**
 * Compiled execution: each (document, operation name) is compiled once by graphql-jit into a function
 * that runs the operation's resolvers and completes their values without graphql-js's per-field
 * interpretation (collecting fields, coercing each field's arguments, building a resolve-info, checking
 * each value's type) on every item of every list. The compiled functions are kept in an LRU bounded
 * by count (`cacheSize`), keyed by the operation name and the document's source text.
 *
 * Whatever graphql-jit cannot compile (it returns errors, or throws), and subscriptions, run with
 * graphql-js, as they would without this: the fallback is per document and remembered. Two places
 * keep answers identical to graphql-js's (test/unit/server/compiled-execution.test.ts compares them):
 *
 * - Variables that do not fit their types: graphql-jit words those errors its own way and without the
 *   variable's AST node, which Apollo (400 BAD_USER_INPUT) and errors.ts read. Nothing has run when
 *   coercion fails, so such a request is executed again by graphql-js, which refuses it in its words.
 * - Field errors: graphql-jit's error objects are not graphql-js GraphQLErrors (no `extensions` when the
 *   thrown error had none, which Apollo's error formatting reads unguarded). Each is rebuilt as
 *   graphql-js's locatedError would have built it (asGraphQLJsError).
 */
export function createOperationExecutor(schema: GraphQLSchema, options: ExecutorOptions): OperationExecutor {
  const interpret = (request: ExecutionRequest): Promise<ExecutionResult> | ExecutionResult =>
    execute({
      schema,
      document: request.document,
      operationName: request.operationName,
      variableValues: request.variables,
      contextValue: request.context,
    });
  if (!options.jit) return { engine: 'graphql-js', execute: interpret };

  const compiled = new LRUCache<string, CompiledQuery | typeof NOT_COMPILED>({ max: options.cacheSize });
  const compile = (request: ExecutionRequest): CompiledQuery | typeof NOT_COMPILED => {
    const key = `${request.operationName ?? ''}\u0000${sourceOf(request.document)}`;
    let query = compiled.get(key);
    if (query !== undefined) return query;
    query = NOT_COMPILED;
    if (operationOf(request.document, request.operationName)?.operation !== 'subscription') {
      try {
        const result = compileQuery(schema, request.document, request.operationName ?? undefined);
        if (isCompiledQuery(result)) query = result;
        else logNotCompiled(options.logger, request, result.errors?.[0]?.message);
      } catch (error) {
        logNotCompiled(options.logger, request, (error as Error).message);
      }
    }
    compiled.set(key, query);
    options.onCompile?.(query === NOT_COMPILED ? 'not_compiled' : 'compiled');
    return query;
  };

  return {
    engine: 'graphql-jit',
    execute(request) {
      const query = compile(request);
      if (query === NOT_COMPILED) return interpret(request);
      const result = query.query(undefined, request.context, (request.variables ?? {}) as Record<string, unknown>);
      return isPromiseLike(result) ? Promise.resolve(result).then((r) => settle(r, request)) : settle(result, request);
    },
  };

  function settle(result: ExecutionResult, request: ExecutionRequest): Promise<ExecutionResult> | ExecutionResult {
    // graphql-jit answers without `data` only when the variables could not be coerced: nothing ran.
    if (!('data' in result) && result.errors?.length) return interpret(request);
    if (!result.errors?.length) return result;
    // `errors` first, as graphql-js orders an answer's keys (and so the bytes Apollo sends).
    return { errors: result.errors.map(asGraphQLJsError), data: result.data };
  }
}

/**
 * A graphql-jit field error as graphql-js reports it: graphql-js keeps a GraphQLError the resolver threw
 * that already has a path as it is, and otherwise wraps what was thrown with the field's path and
 * locations (`locatedError`), what was thrown as `originalError`; its own errors (a null for a non-null
 * field, a value a scalar cannot serialize) are thrown and wrapped the same way. graphql-jit always
 * wraps, and creates its own errors without an `originalError`. Two things stay different: the AST
 * `nodes` (graphql-jit keeps only their locations, which are what the answer shows), and the order of
 * errors when both kinds occur (graphql-jit lists non-null violations last; GraphQL does not order errors).
 */
function asGraphQLJsError(error: GraphQLError): GraphQLError {
  const original = error.originalError;
  if (original instanceof GraphQLError && original.path !== undefined) return original;
  const rebuilt = new GraphQLError(error.message, { path: error.path, originalError: original ?? new Error(error.message) });
  // graphql-js derives locations from AST nodes, which graphql-jit does not keep; it keeps the locations.
  if (error.locations) (rebuilt as { locations: GraphQLError['locations'] }).locations = error.locations;
  return rebuilt;
}

function sourceOf(document: DocumentNode): string {
  // Parsed documents (Apollo's, graphql-ws's) keep their source; one built in code is printed.
  return document.loc?.source.body ?? print(document);
}

function operationOf(document: DocumentNode, name: string | null | undefined): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
  return name ? operations.find((o) => o.name?.value === name) : operations.length === 1 ? operations[0] : undefined;
}

function logNotCompiled(logger: Logger, request: ExecutionRequest, reason: string | undefined): void {
  logger.warn({ operation: request.operationName ?? undefined, reason }, 'operation not compiled (graphql-jit); executed by graphql-js');
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
