import type { CombinedError } from '@urql/core';
import type { GraphQLError } from 'graphql';

/** An error put in words for people, with the gateway's code kept for styling and tests. */
export interface Problem {
  code: string;
  message: string;
  /** Whether the API key field is the place to fix it. */
  aboutKey: boolean;
}

/**
 * Maps the gateway's `extensions.code` to a readable message. Input problems (a malformed or unknown
 * symbol, an unknown strategy) show the server's own message, which says exactly what was wrong.
 */
export function describeGraphQLError(error: Pick<GraphQLError, 'message' | 'extensions'>): Problem {
  const code = typeof error.extensions?.code === 'string' ? error.extensions.code : 'INTERNAL_SERVER_ERROR';
  switch (code) {
    case 'UNAUTHENTICATED':
      return {
        code,
        aboutKey: true,
        message: `An API key is needed, or the one given was refused: enter a valid key in the “API key” field above. (${error.message})`,
      };
    case 'FORBIDDEN':
      return {
        code,
        aboutKey: true,
        message: `This API key’s role may not see this: use a key with a higher role in the “API key” field above. (${error.message})`,
      };
    case 'RATE_LIMITED': {
      const wait = Number(error.extensions?.retryAfterSeconds);
      return {
        code,
        aboutKey: false,
        message: `Too many requests for this key: try again${Number.isFinite(wait) ? ` in ${Math.ceil(wait)} s` : ' shortly'}.`,
      };
    }
    case 'QUERY_TOO_COMPLEX':
      return { code, aboutKey: false, message: `The request is larger than the gateway allows: ${error.message}` };
    case 'UNAVAILABLE':
      return { code, aboutKey: false, message: `The gateway cannot answer this right now: ${error.message}` };
    case 'BAD_USER_INPUT':
    case 'UNKNOWN_SYMBOL':
    case 'UNKNOWN_STRATEGY':
      return { code, aboutKey: false, message: error.message };
    default:
      return { code, aboutKey: false, message: `The gateway reported an error: ${error.message}` };
  }
}

/** The first problem of an urql result error: GraphQL errors first, then the network. */
export function describeError(error: CombinedError): Problem {
  const first = error.graphQLErrors[0];
  if (first) return describeGraphQLError(first);
  const status = (error.response as Response | undefined)?.status;
  if (status === 401) return describeGraphQLError({ message: 'not authenticated', extensions: { code: 'UNAUTHENTICATED' } });
  return {
    code: 'NETWORK',
    aboutKey: false,
    message: `Cannot reach the gateway${status ? ` (HTTP ${status})` : ''}: ${error.networkError?.message ?? error.message}. It retries when you reload or change page.`,
  };
}
