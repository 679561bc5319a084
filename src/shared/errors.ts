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
  /** TRUSTED_DOCUMENTS_ONLY: the operation is not a registered trusted document and the caller is below analyst. */
  FORBIDDEN_OPERATION: 'FORBIDDEN_OPERATION',
  RATE_LIMITED: 'RATE_LIMITED',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  UNAVAILABLE: 'UNAVAILABLE',
  /** A prediction or explanation came out non-finite or out of range (extreme stored bars, a broken model): that item only. */
  MODEL_OUTPUT_INVALID: 'MODEL_OUTPUT_INVALID',
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
  ErrorCode.FORBIDDEN_OPERATION,
  ErrorCode.RATE_LIMITED,
  ErrorCode.QUERY_TOO_COMPLEX,
  ErrorCode.UNAVAILABLE,
  ErrorCode.MODEL_OUTPUT_INVALID,
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

/** Node's codes for a peer that cannot be reached or went away. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** PostgreSQL SQLSTATEs meaning "the server is going or gone", beyond class 08 (connection exception). */
const SERVER_GONE: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '53300']);
/** What `pg` says when a connection dies or cannot be had, without a code. */
const PG_CONNECTION_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed/;

/**
 * Whether `error` (or a cause of it) says a dependency could not be reached: the database refusing
 * connections, a dropped connection, a pool that timed out connecting. Such failures are UNAVAILABLE
 * (retry shortly), not internal errors: nothing is wrong with the request or with our code.
 */
export function isDependencyOutage(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    const { code, message, errors } = current as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_GONE.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
    if (typeof message === 'string' && PG_CONNECTION_MESSAGES.test(message)) return true;
    // A connect to several addresses (IPv4 and IPv6) fails as an AggregateError of their errors.
    if (Array.isArray(errors) && errors.some((inner) => isDependencyOutage(inner))) return true;
    current = (current as { originalError?: unknown; cause?: unknown }).originalError ?? (current as { cause?: unknown }).cause;
  }
  return false;
}
