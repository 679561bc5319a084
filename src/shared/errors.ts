import { GraphQLError } from 'graphql';

/**
 * The error codes clients can rely on (DESIGN.md §4). Every error that leaves the server carries one
 * in `extensions.code`; anything else is an internal error and is masked in production.
 */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNKNOWN_SYMBOL: 'UNKNOWN_SYMBOL',
  UNKNOWN_STRATEGY: 'UNKNOWN_STRATEGY',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  RATE_LIMITED: 'RATE_LIMITED',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Codes that describe the client's request rather than a fault of ours: their messages are safe to show
 * in production. Includes the ones graphql-js/Apollo assign during parsing and validation.
 */
export const CLIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  ErrorCode.BAD_USER_INPUT,
  ErrorCode.UNKNOWN_SYMBOL,
  ErrorCode.UNKNOWN_STRATEGY,
  ErrorCode.UNAUTHENTICATED,
  ErrorCode.FORBIDDEN,
  ErrorCode.RATE_LIMITED,
  ErrorCode.QUERY_TOO_COMPLEX,
  ErrorCode.UNAVAILABLE,
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  'BAD_REQUEST',
]);

/** A GraphQL error with a code from {@link ErrorCode} and optional extra extensions. */
export function codedError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code } });
}

export const badUserInput = (message: string, extensions?: Record<string, unknown>) =>
  codedError(ErrorCode.BAD_USER_INPUT, message, extensions);

export const unavailable = (message: string) => codedError(ErrorCode.UNAVAILABLE, message);
