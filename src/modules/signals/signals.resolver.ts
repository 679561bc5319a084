import type { GraphQLSchema } from 'graphql';
import { Args, Authorized, Ctx, Resolver, Root, Subscription } from 'type-graphql';
import { Role } from '../access/index.js';
import type { Context } from '../../context/context.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { Prediction, type PredictionRecord } from '../predictions/index.js';
import { SignalsArgs } from './signals.args.js';
import type { SignalsService } from './signals.service.js';

/**
 * The service behind each built schema. type-graphql calls a subscription's `subscribe` function
 * without the resolver instance, so the composition root binds the service to the schema it built
 * (see build-schema.ts) and `subscribe` finds it through `info.schema`: no module-level singleton,
 * and several gateways in one process (the tests) keep their own.
 */
const services = new WeakMap<GraphQLSchema, SignalsService>();

export function bindSignalsService(schema: GraphQLSchema, service: SignalsService): void {
  services.set(schema, service);
}

@Resolver(() => Prediction)
export class SignalsResolver {
  @Authorized(Role.Viewer)
  @Subscription(() => Prediction, {
    description:
      'Live predictions: one per new bar of each symbol (and on the fallback interval for providers without bar events), ' +
      'filtered by minConfidence. With `since`, first the recorded ones after it, oldest first, then live ones, with no gap or repeat.',
    subscribe: ({ args, info }) => {
      const service = services.get(info.schema);
      if (!service) throw codedError(ErrorCode.UNAVAILABLE, 'live signals are not enabled on this instance');
      return service.subscribe(args as Record<string, unknown>);
    },
  })
  signals(
    @Root() prediction: PredictionRecord,
    // Validated once when the subscription starts (SignalsService.subscribe), not again per event.
    @Args(() => SignalsArgs, { validateFn: () => undefined }) _args: SignalsArgs,
    @Ctx() ctx: Context,
  ): PredictionRecord {
    // A subscription's context (and its DataLoaders) lives as long as the subscription; each event
    // must see the data of its own bar, as a fresh request would, not what an earlier event cached.
    clearLoaders(ctx.loaders);
    return prediction;
  }
}

/** Each entry of the context's loaders is a DataLoader or a group of them. */
function clearLoaders(groups: Context['loaders']): void {
  for (const group of Object.values(groups) as unknown[]) {
    if (isLoader(group)) group.clearAll();
    else if (typeof group === 'object' && group !== null)
      for (const loader of Object.values(group)) if (isLoader(loader)) loader.clearAll();
  }
}

function isLoader(value: unknown): value is { clearAll(): unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { clearAll?: unknown }).clearAll === 'function';
}
