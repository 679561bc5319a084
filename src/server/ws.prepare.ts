import type { Span } from '@opentelemetry/api';
import {
  GraphQLError,
  getOperationAST,
  parse,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import type { Principal } from '../modules/access/index.js';
import { startSpan } from '../infra/tracing/tracing.js';
import { badUserInput } from '../shared/errors.js';
import type { Admission } from './admission.js';
import type { Lease } from './inflight.js';

export interface SubscribePayload {
  query: string;
  operationName?: string | null | undefined;
  variables?: Record<string, unknown> | null | undefined;
}

export interface PrepareRequest {
  payload: SubscribePayload;
  /** The operation's span: parse and validate become its children. */
  span: Span;
  principal: Principal | undefined;
  clientAddress: string;
  /** Subscriptions this connection has running now (the per-connection cap). */
  subscriptionsRunning: number;
  /** Called once the operation is known, before the checks after it, so a refusal is still observed with its type. */
  onResolved(operation: OperationDefinitionNode, name: string | undefined): void;
  /** The connection's credential, re-checked before admission: the error to send, if it no longer holds. */
  checkCredential(): Promise<GraphQLError | undefined>;
}

export interface Prepared {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** The operation's cost (admission.ts) and its in-flight lease, which the caller now owns. */
  cost: number;
  lease: Lease;
}

/**
 * What graphql-ws's `onSubscribe` does before an operation runs, in this order; each step's refusal is
 * the errors to send (an `error` message), and nothing after it runs:
 *
 * 1. parse, stopping past `maxTokens` (GRAPHQL_PARSE_FAILED, or the limit's own code, errors.ts);
 * 2. validate with the same rules as HTTP (GRAPHQL_VALIDATION_FAILED, or the limit's code);
 * 3. resolve the operation (OPERATION_RESOLUTION_FAILURE); `onResolved` is told;
 * 4. re-check the connection's credential (`checkCredential`, ws.credentials.ts);
 * 5. admission, the same object and rules as HTTP (admission.ts: variables depth, introspection role,
 *    list sizes, cost, rate limit, in-flight budget);
 * 6. subscriptions only: at most `maxSubscriptions` running on the connection (BAD_USER_INPUT); the
 *    lease taken at step 5 is released on this refusal.
 *
 * The codes are those Apollo gives the same failures over HTTP, so clients see one vocabulary. Only a
 * non-GraphQL failure (a bug) rejects; graphql-ws then closes the socket with 4500.
 */
export function createWsPrepare(options: {
  schema: GraphQLSchema;
  validationRules: readonly ValidationRule[];
  admission: Admission;
  /** Parsing stops (QUERY_TOO_COMPLEX) beyond this many tokens. */
  maxTokens: number;
  maxSubscriptions: number;
}): (request: PrepareRequest) => Promise<Prepared | readonly GraphQLError[]> {
  const { maxSubscriptions } = options;
  return async (request) => {
    const { payload, span } = request;
    let document: DocumentNode;
    const parsing = startSpan('graphql.parse', {}, span);
    try {
      document = parse(payload.query, { maxTokens: options.maxTokens });
    } catch (error) {
      parsing.recordException(error as Error);
      return [withCode(error instanceof GraphQLError ? error : new GraphQLError(String(error)), 'GRAPHQL_PARSE_FAILED')];
    } finally {
      parsing.end();
    }
    const validating = startSpan('graphql.validate', {}, span);
    const validationErrors = validate(options.schema, document, options.validationRules);
    validating.end();
    if (validationErrors.length > 0) return validationErrors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
    const operation = getOperationAST(document, payload.operationName);
    if (!operation)
      return [
        withCode(
          new GraphQLError('Could not determine which operation to run: name one with operationName'),
          'OPERATION_RESOLUTION_FAILURE',
        ),
      ];
    request.onResolved(operation, payload.operationName ?? operation.name?.value);
    const refused = await request.checkCredential();
    if (refused) return [refused];
    let admitted;
    try {
      admitted = await options.admission.admit({
        document,
        operationName: payload.operationName,
        variables: payload.variables,
        principal: request.principal,
        clientAddress: request.clientAddress,
      });
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
    if (operation.operation === 'subscription' && request.subscriptionsRunning >= maxSubscriptions) {
      admitted.lease.release();
      return [
        badUserInput(
          `this connection already has ${maxSubscriptions} subscriptions running (the limit); complete one first or open another connection`,
          { limit: maxSubscriptions },
        ),
      ];
    }
    return { document, operation, cost: admitted.cost, lease: admitted.lease };
  };
}

function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}
