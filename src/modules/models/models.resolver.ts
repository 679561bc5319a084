import { Authorized, Query, Resolver } from 'type-graphql';
import { Role } from '../access/index.js';
import { Strategy } from './models.type.js';
import type { ModelsService } from './models.service.js';

@Resolver(() => Strategy)
export class ModelsResolver {
  constructor(private readonly models: ModelsService) {}

  @Authorized(Role.Viewer)
  @Query(() => [Strategy], { description: 'Every strategy with a loaded model, its active version and all versions' })
  strategies(): Strategy[] {
    return this.models.strategies();
  }
}
