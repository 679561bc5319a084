import { defaultFieldResolver, getNullableType, isListType, isObjectType, type GraphQLError, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { tooComplex } from './limits.js';

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
  #exceeded = false;

  constructor(readonly maxItems: number) {}

  get items(): number {
    return this.#items;
  }

  get exceeded(): boolean {
    return this.#exceeded;
  }

  count<T>(value: T): T {
    if (Array.isArray(value)) this.#items += value.length;
    if (this.#items > this.maxItems) {
      this.#exceeded = true;
      throw this.error();
    }
    return value;
  }

  error(): GraphQLError {
    return tooComplex(`Response item limit of ${this.maxItems} exceeded (list items in one response, MAX_RESPONSE_ITEMS).`, { limit: 'responseItems', max: this.maxItems });
  }
}

/** Meters by operation context: the one object resolvers and both transports' hooks share. */
const meters = new WeakMap<object, ResponseMeter>();

export function startMeter(context: object, maxItems: number): ResponseMeter {
  const meter = new ResponseMeter(maxItems);
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
