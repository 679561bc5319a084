import { GraphQLError, Kind, type GraphQLFormattedError } from 'graphql';
import { CLIENT_ERROR_CODES, ErrorCode, isDependencyOutage } from '../shared/errors.js';

interface ValidationErrorLike {
  property: string;
  value?: unknown;
  constraints?: Record<string, string>;
  children?: ValidationErrorLike[];
}

/**
 * The one policy for what an error looks like when it leaves the server, for HTTP and WebSocket alike:
 * - every error gets a code; one without a known code is an internal error;
 * - internal errors are masked in production (no message text, stack, SQL or path leaves);
 * - type-graphql's "Argument Validation Error" is rewritten to say which argument broke which rule;
 * - an uncoded error whose cause is an unreachable dependency (`original`, the error itself, says so)
 *   is UNAVAILABLE: the client should retry shortly, and nothing about the dependency is shown.
 */
export function formatGraphQLError(formatted: GraphQLFormattedError, isProduction: boolean, original?: unknown): GraphQLFormattedError {
  const extensions = { ...(formatted.extensions ?? {}) };
  let code = typeof extensions.code === 'string' ? extensions.code : undefined;
  let message = formatted.message;
  if ((code === undefined || code === ErrorCode.INTERNAL_SERVER_ERROR) && original !== undefined && isDependencyOutage(original)) {
    return {
      message: 'A service this request needs (the database) is unavailable right now; try again shortly',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: ErrorCode.UNAVAILABLE },
    };
  }

  if (Array.isArray(extensions.validationErrors)) {
    message = describeValidationErrors(extensions.validationErrors as ValidationErrorLike[]);
    extensions.validationErrors = flattenValidationErrors(extensions.validationErrors as ValidationErrorLike[]);
  }
  if (code === 'UNAUTHORIZED') code = ErrorCode.FORBIDDEN; // type-graphql's name for it
  if ((code === undefined || code === ErrorCode.INTERNAL_SERVER_ERROR) && isUncodedRequestRefusal(original)) code = 'BAD_REQUEST';
  if ((code === undefined || code === ErrorCode.INTERNAL_SERVER_ERROR) && isVariableCoercionError(original))
    code = ErrorCode.BAD_USER_INPUT;
  // Limits hit during parsing (maxTokens; graphql 16 writes "more that") or validation (depth, aliases): the transports label those
  // phases' errors GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED; clients get the limit's own code.
  const tokens = /Document contains more (?:than|that) (\d+) tokens/.exec(message);
  if (code === 'GRAPHQL_PARSE_FAILED' && tokens) {
    code = ErrorCode.QUERY_TOO_COMPLEX;
    Object.assign(extensions, { limit: 'tokens', max: Number(tokens[1]) });
    message = `Token limit of ${tokens[1]} exceeded.`;
  }
  if (code === 'GRAPHQL_VALIDATION_FAILED' && typeof extensions.limit === 'string') code = ErrorCode.QUERY_TOO_COMPLEX;
  // Field suggestions ("Did you mean …?") reveal the schema: Apollo drops them over HTTP in production,
  // this does it for WebSocket too.
  if (isProduction && code === 'GRAPHQL_VALIDATION_FAILED') message = message.replace(/ ?Did you mean .+\?$/, '');
  delete extensions.http;

  const isClientError = code !== undefined && CLIENT_ERROR_CODES.has(code);
  if (!isClientError) {
    code = ErrorCode.INTERNAL_SERVER_ERROR;
    if (isProduction) {
      return { message: 'Internal server error', locations: formatted.locations, path: formatted.path, extensions: { code } };
    }
  }
  // A stack says nothing useful about the client's own mistake; internal errors keep theirs outside production.
  delete extensions.stacktrace;
  return { ...formatted, message, extensions: { ...extensions, code } };
}

/**
 * Apollo refuses some malformed requests with an HTTP 4xx status but no code (an unsupported
 * persisted-query version; a `sha256Hash` that is not the hash of the query sent with it), which it
 * would then label INTERNAL_SERVER_ERROR. The status is Apollo's verdict: the request is at fault.
 */
function isUncodedRequestRefusal(original: unknown): boolean {
  if (!(original instanceof GraphQLError) || original.extensions.code !== undefined || original.originalError) return false;
  const status = (original.extensions.http as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * graphql-js reports variables that do not fit their declared types (`{ s: 5 }` for `[String!]!`, a
 * missing required one) as uncoded errors located at the variable's definition. Apollo codes them
 * BAD_USER_INPUT over HTTP by the same test; graphql-ws does not, so this does it for both.
 */
function isVariableCoercionError(original: unknown): boolean {
  if (!(original instanceof GraphQLError) || original.extensions.code !== undefined || original.path !== undefined) return false;
  return original.nodes?.length === 1 && original.nodes[0]!.kind === Kind.VARIABLE_DEFINITION;
}

function flattenValidationErrors(errors: ValidationErrorLike[], prefix = ''): Array<{ argument: string; problems: string[] }> {
  return errors.flatMap((error) => {
    const name = prefix ? `${prefix}.${error.property}` : error.property;
    const own = error.constraints ? [{ argument: name, problems: Object.values(error.constraints) }] : [];
    return [...own, ...flattenValidationErrors(error.children ?? [], name)];
  });
}

function describeValidationErrors(errors: ValidationErrorLike[]): string {
  const parts = flattenValidationErrors(errors).map((e) => `${e.argument}: ${e.problems.join('; ')}`);
  return parts.length > 0 ? `Invalid arguments: ${parts.join(' | ')}` : 'Invalid arguments';
}

/** The codes of a response's errors, for logs and metrics. */
export function errorCodes(errors: readonly GraphQLFormattedError[] | undefined): string[] {
  return (errors ?? []).map((e) => (typeof e.extensions?.code === 'string' ? e.extensions.code : ErrorCode.INTERNAL_SERVER_ERROR));
}
