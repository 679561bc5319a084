import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { GraphQLError, type GraphQLSchema, type DocumentNode, type ValidationContext, type ValidationRule } from 'graphql';
import { getComplexity, simpleEstimator, type ComplexityEstimator } from 'graphql-query-complexity';
import { ErrorCode, badUserInput, codedError } from '../shared/errors.js';

/** The static limits every operation meets, over HTTP and WebSocket alike. */
export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxTokens: number;
  maxCost: number;
}

/**
 * Depth and alias limits as validation rules (graphql-armor), so both transports run them in the one
 * validation pass they already make; the token limit is a parse option (`maxTokens`), and cost needs
 * the variables, so it is checked at admission (see admission.ts). A rejection is a validation error
 * whose `extensions.limit` names the limit; errors.ts gives it the code QUERY_TOO_COMPLEX.
 */
export function limitRules(limits: Pick<QueryLimits, 'maxDepth' | 'maxAliases'>): ValidationRule[] {
  const report = (limit: string, max: number) => (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(tooComplex(error.message.replace(/^Syntax Error: /, ''), { limit, max }));
  };
  return [
    maxDepthRule({ n: limits.maxDepth, propagateOnRejection: false, onReject: [report('depth', limits.maxDepth)] }),
    maxAliasesRule({ n: limits.maxAliases, allowList: [], propagateOnRejection: false, onReject: [report('aliases', limits.maxAliases)] }),
  ];
}

export function tooComplex(message: string, detail: { limit: string; max: number; actual?: number }): GraphQLError {
  return codedError(ErrorCode.QUERY_TOO_COMPLEX, message, { ...detail, http: { status: 400 } });
}

/**
 * Arguments that say how many items a field returns, so its cost is that many times the cost of one
 * item: `symbols: [String!]!` (its length) and `last`/`first`/`limit: Int` (their value). A resolver
 * whose cost grows with another argument names it here.
 */
const LIST_SIZE_ARGS = ['symbols'] as const;
const COUNT_ARGS = ['last', 'first', 'limit'] as const;

function listSizeEstimator(maxListSize: number): ComplexityEstimator {
  return ({ args, childComplexity }) => {
    let multiplier = 1;
    for (const name of LIST_SIZE_ARGS) {
      const value = args[name];
      if (!Array.isArray(value)) continue;
      // Refused here, before anything runs, with the resolver's own words (it checks too).
      if (value.length > maxListSize) throw badUserInput(`${name}: at most ${maxListSize} per request, got ${value.length}`, { limit: maxListSize });
      multiplier *= Math.max(1, value.length);
    }
    for (const name of COUNT_ARGS) {
      const value = args[name];
      if (typeof value === 'number' && Number.isFinite(value)) multiplier *= Math.max(1, Math.min(value, 100_000));
    }
    return multiplier === 1 ? undefined : multiplier * (1 + childComplexity);
  };
}

/**
 * The cost of an operation: 1 per field, with list-size arguments multiplying their field's subtree.
 * `predictions(symbols: [50 symbols]) { …16 fields… }` costs 50 × 17 = 850. Undefined when the
 * variables do not fit the operation (execution reports that as BAD_USER_INPUT). Throws BAD_USER_INPUT
 * when a list argument is longer than `maxListSize` (MAX_SYMBOLS_PER_REQUEST).
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | undefined | null,
  variables: Record<string, unknown> | undefined | null,
  maxListSize: number,
): number | undefined {
  try {
    return getComplexity({
      schema,
      query: document,
      operationName: operationName ?? undefined,
      variables: variables ?? {},
      estimators: [listSizeEstimator(maxListSize), simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (error) {
    if (error instanceof GraphQLError && error.extensions.code === ErrorCode.BAD_USER_INPUT) throw error;
    return undefined;
  }
}
