import { Args, Authorized, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../context/context.js';
import { Role } from '../access/index.js';
import { StrategyArgs } from '../../domain/args.js';
import { ActivateModelVersionArgs, PromotionsArgs, ShadowModelVersionArgs } from './models.args.js';
import { Strategy } from './models.type.js';
import { PromotionDecision } from './promotion.type.js';
import type { ModelsService } from './models.service.js';

/**
 * The actor recorded in the audit log: the caller's principal id (`key:<uuid>`, `jwt:<sub>`, or `dev`
 * with AUTH_MODE=off), never the credential. The mutations are admin-only, so there always is one.
 */
const actorOf = (ctx: Context) => ctx.principal?.id ?? 'anonymous';

const DEFAULT_PROMOTIONS = 20;

@Resolver(() => Strategy)
export class ModelsResolver {
  constructor(private readonly models: ModelsService) {}

  @Authorized(Role.Viewer)
  @Query(() => [Strategy], { description: 'Every strategy with a loaded model, its active version and all versions' })
  strategies(): Strategy[] {
    return this.models.strategies();
  }

  @Authorized(Role.Viewer)
  @FieldResolver(() => [PromotionDecision], {
    description:
      'The promotion policy’s latest recorded decisions for this strategy, newest first: promotions, rollbacks, alerts and holds, each with its evidence (README, Model lifecycle: the promotion loop)',
  })
  promotions(@Root() strategy: Strategy, @Args(() => PromotionsArgs) { last }: PromotionsArgs, @Ctx() ctx: Context): Promise<PromotionDecision[]> {
    return ctx.loaders.models.promotions.load({ strategy: strategy.name, last: last ?? DEFAULT_PROMOTIONS });
  }

  @Authorized(Role.Admin)
  @Mutation(() => Strategy, {
    description:
      'Verifies a version from the models directory (sha256, manifest, features, smoke inference) and makes it serve the strategy on every instance. ' +
      'A broken version is refused with BAD_USER_INPUT and the current one keeps serving. Recorded in the audit log.',
  })
  activateModelVersion(@Args(() => ActivateModelVersionArgs) { strategy, version }: ActivateModelVersionArgs, @Ctx() ctx: Context): Promise<Strategy> {
    return this.models.activate(strategy, version, actorOf(ctx));
  }

  @Authorized(Role.Admin)
  @Mutation(() => Strategy, { description: 'Activates the version the latest activation of the strategy replaced' })
  rollbackModelVersion(@Args(() => StrategyArgs) { strategy }: StrategyArgs, @Ctx() ctx: Context): Promise<Strategy> {
    return this.models.rollback(strategy, actorOf(ctx));
  }

  @Authorized(Role.Admin)
  @Mutation(() => Strategy, {
    description: 'Runs a version in shadow (scored with the active one, recorded in history under its own version, never served); null stops it',
  })
  setShadowModelVersion(@Args(() => ShadowModelVersionArgs) { strategy, version }: ShadowModelVersionArgs, @Ctx() ctx: Context): Promise<Strategy> {
    return this.models.setShadow(strategy, version ?? null, actorOf(ctx));
  }
}
