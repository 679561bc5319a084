import type { Span } from '@opentelemetry/api';
import {
  createSourceEventStream,
  execute,
  getArgumentValues,
  getVariableValues,
  Kind,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { Principal } from '../modules/access/index.js';
import { inSpan, startRootSpan, withSpan } from '../infra/tracing/tracing.js';
import type { OperationExecutor } from './compiled-execution.js';
import type { InflightBudget, Lease } from './inflight.js';
import { meterOf } from './response-meter.js';

/** What an admitted operation carries from onSubscribe to graphql-ws's `execute`/`subscribe`. */
export interface OperationRun {
  /** `graphql.ws.operation`: execute/subscribe run as its children, events link to it. */
  readonly span: Span;
  /** What the admission holds (admission.ts `holdAdmitted`): released when execution ends, or once a subscription has started. */
  readonly lease: Lease;
  /** Subscriptions: what one event holds of the in-flight budget while it executes. */
  readonly eventShare?: { readonly budget: InflightBudget; readonly cost: number } | undefined;
  /** Subscriptions: events share one execution among operations with the same key (see `shareKey`). */
  readonly shareKey?: string | undefined;
}

/**
 * graphql-ws's `execute` and `subscribe`, one instance per transport.
 *
 * Ordering: onSubscribe `register`s the ExecutionArgs it returns; graphql-ws then calls exactly one of
 * `execute` (query, mutation) or `subscribe` with that same object, from its message handler, outside
 * any span of ours. Both run inside the operation's span, so what resolvers do (market fetch, features,
 * inference, SQL) joins its trace. The lease is released in a `finally`, however execution ended; what
 * they throw, graphql-ws turns into an `error` message (or closes 4500 for a non-GraphQL error).
 *
 * Subscriptions: each event is executed once per share key, not once per subscriber: ten thousand
 * subscribers of a symbol cost one execution per new bar, and each socket sends the same result.
 * graphql-js would run the selection for every subscriber. Sound because the result depends only on the
 * event, the document, the variables and the subscriber's role (field authorization, the one thing
 * resolvers take from the per-subscriber context, depends on the role only). Anything per-subscriber
 * added to resolvers later must join the share key. Events are owed to the subscriber: each waits for
 * room in the in-flight budget (`eventShare`), never refused.
 */
export class SharedExecution {
  /** Keyed by the ExecutionArgs graphql-ws hands back; gone with them. */
  readonly #runs = new WeakMap<ExecutionArgs, OperationRun>();
  /** Per event payload (the same object for every subscriber of it): results by share key. */
  readonly #resultsByEvent = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();

  /** Queries and mutations run with `executor` (the one HTTP uses) when given; subscription events with graphql-js. */
  constructor(private readonly executor?: OperationExecutor) {}

  register(args: ExecutionArgs, run: OperationRun): void {
    this.#runs.set(args, run);
  }

  /** A query or mutation: a response past MAX_RESPONSE_ITEMS is one error, not partial data. */
  readonly execute = async (args: ExecutionArgs): Promise<ExecutionResult> => {
    const run = this.#runs.get(args);
    try {
      const result = await this.#inOperationSpan(run, 'graphql.execute', () =>
        this.executor
          ? this.executor.execute({
              document: args.document,
              operationName: args.operationName,
              variables: args.variableValues,
              context: args.contextValue as object,
            })
          : execute(args),
      );
      const meter = meterOf(args.contextValue as object);
      return meter?.exceeded ? { errors: [meter.error()] } : result;
    } finally {
      run?.lease.release();
    }
  };

  /** graphql-js's `subscribe`, except that events are executed once per share key (see above). */
  readonly subscribe = async (args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> => {
    const run = this.#runs.get(args);
    try {
      return await this.#inOperationSpan(run, 'graphql.subscribe', () => this.#subscribeSharing(args, run));
    } finally {
      run?.lease.release();
    }
  };

  async #inOperationSpan<T>(run: OperationRun | undefined, name: string, fn: () => T | Promise<T>): Promise<T> {
    if (!run) return fn();
    return withSpan(run.span, () => inSpan(name, {}, async () => fn()));
  }

  async #subscribeSharing(args: ExecutionArgs, run: OperationRun | undefined): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source as ExecutionResult;
    const key = run?.shareKey;
    const once = (payload: unknown): ExecutionResult | Promise<ExecutionResult> => {
      if (key === undefined || typeof payload !== 'object' || payload === null) return executeEvent(args, run, payload);
      let results = this.#resultsByEvent.get(payload);
      if (!results) this.#resultsByEvent.set(payload, (results = new Map()));
      let result = results.get(key);
      if (!result) results.set(key, (result = executeEvent(args, run, payload)));
      return result;
    };
    const iterator = source[Symbol.asyncIterator]();
    return {
      async next() {
        const step = await iterator.next();
        return step.done ? { done: true, value: undefined } : { done: false, value: await once(step.value) };
      },
      async return() {
        await iterator.return?.();
        return { done: true, value: undefined };
      },
      async throw(error: unknown) {
        await iterator.return?.();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    } as AsyncGenerator<ExecutionResult>;
  }
}

/**
 * One event of a subscription, executed: its own trace (`graphql.ws.event` → `graphql.execute`), linked
 * to the subscription's `graphql.ws.operation`. Subscribers sharing the execution share this trace; it
 * links to the subscription that ran it.
 */
async function executeEvent(args: ExecutionArgs, run: OperationRun | undefined, rootValue: unknown): Promise<ExecutionResult> {
  const share = run?.eventShare;
  const lease = share ? await share.budget.acquire(share.cost, 'unbounded') : undefined;
  const span = startRootSpan(
    'graphql.ws.event',
    { 'graphql.operation.type': 'subscription' },
    run ? [{ context: run.span.spanContext() }] : [],
  );
  try {
    return await withSpan(span, () => inSpan('graphql.execute', {}, async () => execute({ ...args, rootValue })));
  } finally {
    span.end();
    lease?.release();
  }
}

/**
 * Which subscriptions share an event's execution: the role is part of the key, since field authorization
 * (@Authorized) depends on it and on nothing else of the subscriber's.
 */
export function shareKey(
  principal: Principal | undefined,
  payload: { query: string; operationName?: string | null | undefined; variables?: Record<string, unknown> | null | undefined },
): string {
  return `${principal?.role ?? '(anonymous)'}\u0000${payload.operationName ?? ''}\u0000${payload.query}\u0000${JSON.stringify(payload.variables ?? null)}`;
}

/**
 * The cost of executing one event: a subscription's cost counts its selection once per symbol it
 * listens to, an event executes it for one prediction.
 */
export function eventCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | null | undefined,
  cost: number,
): number {
  const root = operation.selectionSet.selections[0];
  const field = root?.kind === Kind.FIELD ? schema.getSubscriptionType()?.getFields()[root.name.value] : undefined;
  if (!root || root.kind !== Kind.FIELD || !field) return cost;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 });
  if (coerced.errors) return cost;
  const symbols = getArgumentValues(field, root, coerced.coerced).symbols;
  return Array.isArray(symbols) && symbols.length > 1 ? Math.ceil(cost / symbols.length) : cost;
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
