import { Args, Query, Resolver } from 'type-graphql';
import { ModelMetrics } from '../models/index.js';
import { ModelMetricsArgs } from './metrics.args.js';
import type { MetricsService } from './metrics.service.js';

@Resolver()
export class MetricsResolver {
  constructor(private readonly service: MetricsService) {}

  @Query(() => ModelMetrics, {
    description:
      'How a model’s served predictions turned out (source: realized), from outcomes recorded after each horizon. sampleSize 0 and null metrics when nothing has resolved yet.',
  })
  modelMetrics(@Args(() => ModelMetricsArgs) args: ModelMetricsArgs): Promise<ModelMetrics> {
    return this.service.modelMetrics(args);
  }
}
