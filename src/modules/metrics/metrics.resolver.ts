import { Args, Authorized, Query, Resolver } from 'type-graphql';
import { Role } from '../access/index.js';
import { ModelMetrics } from '../models/index.js';
import { ModelMetricsArgs } from './metrics.args.js';
import type { MetricsService } from './metrics.service.js';

@Resolver()
export class MetricsResolver {
  constructor(private readonly service: MetricsService) {}

  @Authorized(Role.Analyst)
  @Query(() => ModelMetrics, {
    description:
      'How a model’s served predictions turned out (source: realized), from outcomes recorded after each horizon. sampleSize 0 and null metrics when nothing has resolved yet.',
  })
  modelMetrics(@Args(() => ModelMetricsArgs) args: ModelMetricsArgs): Promise<ModelMetrics> {
    return this.service.modelMetrics(args);
  }
}
