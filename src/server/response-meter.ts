import {
  defaultFieldResolver,
  getNullableType,
  isListType,
  isObjectType,
  type GraphQLError,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import { AUTO_BUCKETS, MAX_BUCKETS } from '../modules/history/index.js';
import type { InflightBudget, Lease } from './inflight.js';
import { tooComplex } from './limits.js';

/**
 * Lists without a size argument that can still be long, with the most items each call may return:
 * reserved from the operation's MAX_RESPONSE_ITEMS and held in the in-flight budget before the
 * resolver runs, so 28 aliased `confidenceHistory` calls are refused before their rows are read, and
 * the rows of concurrent operations are bounded like their cost. `confidenceHistory` gives at most
 * AUTO_BUCKETS buckets with the default range (30 days) and bucket, MAX_BUCKETS otherwise. So
 * MAX_RESPONSE_ITEMS below MAX_BUCKETS (10,000) refuses `confidenceHistory` with `from` or `bucket`.
 */
const RESERVED_ITEMS: Readonly<Record<string, (args: Record<string, unknown>) => number>> = {
  'Query.confidenceHistory': (args) => (args.bucket == null && args.from == null ? AUTO_BUCKETS : MAX_BUCKETS),
};

/**
 * The list items one operation's response holds, counted as its list fields resolve, and refused past
 * MAX_RESPONSE_ITEMS. The static cost (cost.ts) counts a list without a size argument
 * (`confidenceHistory`, `factors`, `strategies`…) as one item; this is the bound that holds for those
 * whatever the data, and a backstop for the rest. Once over, every list field still to resolve fails
 * at once without running, and the transport answers the whole operation with one QUERY_TOO_COMPLEX
 * error instead of a partial response.
 */
export class ResponseMeter {
  #items = 0;
  #reserved = 0;
  #refusal: GraphQLError | undefined;
  readonly #leases: Lease[] = [];

  constructor(
    readonly maxItems: number,
    private readonly budget?: InflightBudget,
  ) {}

  get items(): number {
    return this.#items;
  }

  get exceeded(): boolean {
    return this.#refusal !== undefined;
  }

  count<T>(value: T): T {
    if (Array.isArray(value)) this.#items += value.length;
    if (this.#items + this.#reserved > this.maxItems) throw this.#refuse(this.#tooMany());
    return value;
  }

  /**
   * Room for up to `items` before a resolver runs (RESERVED_ITEMS): refused when it would pass
   * MAX_RESPONSE_ITEMS, held in the in-flight budget (waiting like an operation) until {@link release}.
   * Returns what to call once the resolver has answered, before its items are counted.
   */
  async reserve(items: number): Promise<() => void> {
    if (this.#refusal) throw this.#refusal;
    if (this.#items + this.#reserved + items > this.maxItems) throw this.#refuse(this.#tooMany());
    this.#reserved += items;
    let settled = false;
    const settle = () => {
      if (!settled) this.#reserved -= items;
      settled = true;
    };
    if (this.budget) {
      try {
        this.#leases.push(await this.budget.acquire(items));
      } catch (error) {
        settle();
        throw this.#refuse(error as GraphQLError);
      }
    }
    return settle;
  }

  /** Gives back what {@link reserve} took from the in-flight budget: when the operation has ended. */
  release(): void {
    for (const lease of this.#leases.splice(0)) lease.release();
  }

  /** Why the operation is refused: the whole response is this one error. */
  error(): GraphQLError {
    return this.#refusal ?? this.#tooMany();
  }

  #refuse(error: GraphQLError): GraphQLError {
    this.#refusal ??= error;
    return this.#refusal;
  }

  #tooMany(): GraphQLError {
    return tooComplex(`Response item limit of ${this.maxItems} exceeded (list items in one response, MAX_RESPONSE_ITEMS).`, {
      limit: 'responseItems',
      max: this.maxItems,
    });
  }
}

/** Meters by operation context: the one object resolvers and both transports' hooks share. */
const meters = new WeakMap<object, ResponseMeter>();

export function startMeter(context: object, maxItems: number, budget?: InflightBudget): ResponseMeter {
  const meter = new ResponseMeter(maxItems, budget);
  meters.set(context, meter);
  return meter;
}

export function meterOf(context: object): ResponseMeter | undefined {
  return meters.get(context);
}

const metered = new WeakSet<GraphQLSchema>();

/**
 * Wraps the resolver of every list field of the query and mutation types' reachable object types so
 * it reports to its operation's meter. A context without a meter (a subscription's events) resolves as
 * before. Sync resolvers stay sync. Idempotent per schema.
 */
export function meterListFields(schema: GraphQLSchema): void {
  if (metered.has(schema)) return;
  metered.add(schema);
  const subscription = schema.getSubscriptionType();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__') || type === subscription) continue;
    for (const field of Object.values(type.getFields())) {
      if (!isListType(getNullableType(field.type))) continue;
      const resolve: GraphQLFieldResolver<unknown, unknown> = field.resolve ?? defaultFieldResolver;
      const reserved = RESERVED_ITEMS[`${type.name}.${field.name}`];
      if (reserved) {
        field.resolve = async (source, args, context, info) => {
          const meter = typeof context === 'object' && context !== null ? meters.get(context) : undefined;
          if (!meter) return resolve(source, args, context, info);
          const settle = await meter.reserve(reserved(args));
          let value: unknown;
          try {
            value = await resolve(source, args, context, info);
          } finally {
            settle();
          }
          return meter.count(value);
        };
        continue;
      }
      field.resolve = (source, args, context, info) => {
        const meter = typeof context === 'object' && context !== null ? meters.get(context) : undefined;
        if (!meter) return resolve(source, args, context, info);
        if (meter.exceeded) throw meter.error();
        const result = resolve(source, args, context, info);
        if (isPromiseLike(result)) return Promise.resolve(result).then((value) => meter.count(value));
        return meter.count(result);
      };
    }
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
