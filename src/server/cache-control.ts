import type { ApolloServerPlugin } from '@apollo/server';
import { Kind, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Context } from '../context/context.js';

/**
 * Root fields whose answer is the same for every caller allowed to ask and changes only when bars do
 * (a new bar moves predictions, history, trends, metrics, drift) or when an operator acts (a model
 * activation, an import): an HTTP cache may keep it until the next bar could arrive. Anything not
 * listed (`health` is live state, `apiKeys` is an admin's view, fields added later) is `no-store`
 * until someone decides otherwise here.
 */
const MARKET_BOUND_FIELDS: ReadonlySet<string> = new Set([
  'prediction',
  'predictions',
  'confidenceHistory',
  'confidenceTrends',
  'modelMetrics',
  'strategies',
  'symbols',
  'drift',
  'backtest',
  '__typename',
  '__schema',
  '__type',
]);

export interface CacheControlOptions {
  /** HTTP_CACHE_MAX_AGE_S: the ceiling (also bounds how long an activation or an import takes to show). */
  readonly maxAgeSeconds: number;
  /** How long the bars now served stay the newest (feed.ts msUntilNextBar). */
  readonly msUntilNextBar: () => number;
}

/**
 * `Cache-Control` on GET answers (docs/decisions/http-cache-control.md). POST answers are not cached by
 * HTTP caches and get none. GET answers Apollo gives before any plugin runs (a CSRF refusal, a
 * credential that does not verify) get `no-store` from server.ts. A GET answer is
 * - `no-store` when it carries an error, is not a query, or selects a field outside MARKET_BOUND_FIELDS;
 * - otherwise `max-age` = whole seconds until the next bar could arrive, at most `maxAgeSeconds`
 *   (`no-cache` when that is 0), `public` for an anonymous caller and `private` for one with credentials:
 *   a shared cache must never hand an answer paid for by one API key to a caller without one.
 */
export function cacheControlPlugin(options: CacheControlOptions): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ request, response, operation, document }) {
          // Apollo's own choice stands where it makes one (PersistedQueryNotFound: private, no-cache).
          if (request.http?.method !== 'GET' || response.http.headers.has('cache-control')) return;
          const body = response.body;
          const errors = body.kind === 'single' ? body.singleResult.errors : body.initialResult.errors;
          const status = response.http.status ?? 200;
          const cacheable =
            status < 400 &&
            !errors?.length &&
            operation?.operation === 'query' &&
            rootFields(operation, document?.definitions ?? []).every((name) => MARKET_BOUND_FIELDS.has(name));
          // The credential sent, not the principal: with AUTH_MODE=off every caller is an admin, yet what
          // an anonymous caller may read is what a shared cache may hand to anyone.
          const credentialed = request.http.headers.has('authorization');
          response.http.headers.set('cache-control', cacheable ? cacheControlValue(options, credentialed) : 'no-store');
          // Apollo answers `application/graphql-response+json` or `application/json` by the Accept header.
          if (cacheable) response.http.headers.set('vary', 'accept');
        },
      };
    },
  };
}

/** The header of a cacheable answer: `public`/`private`, and `max-age` or `no-cache` when under a second is left. */
export function cacheControlValue(options: CacheControlOptions, credentialed: boolean): string {
  const seconds = Math.floor(Math.min(options.maxAgeSeconds * 1000, options.msUntilNextBar()) / 1000);
  const scope = credentialed ? 'private' : 'public';
  return seconds >= 1 ? `${scope}, max-age=${seconds}` : `${scope}, no-cache`;
}

/** The names of the fields an operation selects at its root, through fragments and inline fragments. */
function rootFields(operation: OperationDefinitionNode, definitions: readonly { kind: Kind }[]): string[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      const fragment = definition as FragmentDefinitionNode;
      fragments.set(fragment.name.value, fragment);
    }
  const names: string[] = [];
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) names.push(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return names;
}
