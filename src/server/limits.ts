import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { BREAK, GraphQLError, Kind, type ASTVisitor, type ValidationContext, type ValidationRule } from 'graphql';
import { ErrorCode, codedError } from '../shared/errors.js';
import { measureOperation, type OperationSize } from './cost.js';

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
    failClosed(maxDepthRule({ n: limits.maxDepth, propagateOnRejection: false, onReject: [report('depth', limits.maxDepth)] }), 'depth'),
    failClosed(
      maxAliasesRule({
        n: limits.maxAliases,
        allowList: [],
        propagateOnRejection: false,
        onReject: [report('aliases', limits.maxAliases)],
      }),
      'aliases',
    ),
  ];
}

export function tooComplex(message: string, detail: { limit: string; max: number; actual?: number }): GraphQLError {
  return codedError(ErrorCode.QUERY_TOO_COMPLEX, message, { ...detail, http: { status: 400 } });
}

/**
 * A limit rule whose own failure refuses the operation: an exception thrown inside a rule's visitor
 * (a bug, or a document it did not expect) would otherwise surface as an internal error, or, where a
 * caller treated it as "not measured", admit the operation unchecked.
 */
const VISITOR_KEYS: ReadonlySet<string> = new Set<string>([...Object.values(Kind), 'enter', 'leave']);

export function failClosed(rule: ValidationRule, limit: string): ValidationRule {
  return (context) => {
    const visitor = rule(context) as unknown as Record<string, unknown>;
    const guarded: Record<string, unknown> = {};
    const guard =
      (fn: (...args: unknown[]) => unknown, self: unknown) =>
      (...args: unknown[]) => {
        try {
          return fn.apply(self, args);
        } catch {
          context.reportError(tooComplex(`The ${limit} limit could not be checked; the operation is refused.`, { limit, max: 0 }));
          return BREAK;
        }
      };
    for (const key of Object.keys(visitor)) {
      if (!VISITOR_KEYS.has(key)) continue;
      const handler = visitor[key];
      if (typeof handler === 'function') guarded[key] = guard(handler as (...args: unknown[]) => unknown, visitor);
      else if (handler && typeof handler === 'object') {
        const { enter, leave } = handler as { enter?: (...args: unknown[]) => unknown; leave?: (...args: unknown[]) => unknown };
        guarded[key] = { ...(enter && { enter: guard(enter, visitor) }), ...(leave && { leave: guard(leave, visitor) }) };
      }
    }
    return guarded as ASTVisitor;
  };
}

/**
 * The size of an operation after fragment expansion (cost.ts), or a coded refusal: BAD_USER_INPUT
 * when the variables do not fit the operation or a list argument is longer than `maxListSize`
 * (MAX_SYMBOLS_PER_REQUEST), QUERY_TOO_COMPLEX for anything else that goes wrong while measuring.
 * Never "unknown": an operation whose size is not known does not run.
 */
export function operationCost(...args: Parameters<typeof measureOperation>): OperationSize {
  try {
    return measureOperation(...args);
  } catch (error) {
    if (error instanceof GraphQLError && typeof error.extensions.code === 'string') throw error;
    throw tooComplex("The operation's cost could not be measured; it is refused.", { limit: 'cost', max: 0 });
  }
}

/**
 * How deeply `value` nests (a scalar is 0, `[]` and `{}` are 1), counted without recursion and
 * stopping as soon as `max` is passed, so variables nested thousands deep are measured in constant
 * stack before anything that recurses (JSON.stringify, variable coercion) sees them.
 */
export function nestingExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

export function variablesTooDeep(max: number): GraphQLError {
  return codedError(ErrorCode.BAD_USER_INPUT, `Variables nested deeper than ${max} levels (MAX_VARIABLES_DEPTH)`, {
    limit: 'variablesDepth',
    max,
    http: { status: 400 },
  });
}
