import { Args, Mutation, Query, Resolver } from 'type-graphql';
import { ActivateModelVersionArgs, ShadowModelVersionArgs, StrategyArgs } from './models.args.js';
import { Strategy } from './models.type.js';
import type { ModelsService } from './models.service.js';

/**
 * The actor recorded in the audit log. Until the gateway authenticates callers, every change is
 * "anonymous"; with authentication, this becomes the caller's principal (and the mutations admin-only).
 */
const ACTOR = 'anonymous';

@Resolver(() => Strategy)
export class ModelsResolver {
  constructor(private readonly models: ModelsService) {}

  @Query(() => [Strategy], { description: 'Every strategy with a loaded model, its active version and all versions' })
  strategies(): Strategy[] {
    return this.models.strategies();
  }

  @Mutation(() => Strategy, {
    description:
      'Verifies a version from the models directory (sha256, manifest, features, smoke inference) and makes it serve the strategy on every instance. ' +
      'A broken version is refused with BAD_USER_INPUT and the current one keeps serving. Recorded in the audit log.',
  })
  activateModelVersion(@Args(() => ActivateModelVersionArgs) { strategy, version }: ActivateModelVersionArgs): Promise<Strategy> {
    return this.models.activate(strategy, version, ACTOR);
  }

  @Mutation(() => Strategy, { description: 'Activates the version the latest activation of the strategy replaced' })
  rollbackModelVersion(@Args(() => StrategyArgs) { strategy }: StrategyArgs): Promise<Strategy> {
    return this.models.rollback(strategy, ACTOR);
  }

  @Mutation(() => Strategy, {
    description: 'Runs a version in shadow (scored with the active one, recorded in history under its own version, never served); null stops it',
  })
  setShadowModelVersion(@Args(() => ShadowModelVersionArgs) { strategy, version }: ShadowModelVersionArgs): Promise<Strategy> {
    return this.models.setShadow(strategy, version ?? null, ACTOR);
  }
}
