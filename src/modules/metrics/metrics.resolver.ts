import { Args, Authorized, Query, Resolver } from 'type-graphql';
import { unavailable } from '../../shared/errors.js';
import { Role } from '../access/index.js';
import { ModelMetrics } from '../models/index.js';
import { CompareModelsArgs } from './comparison.args.js';
import type { ComparisonService } from './comparison.service.js';
import { ModelComparison } from './comparison.type.js';
import { ModelMetricsArgs } from './metrics.args.js';
import type { MetricsService } from './metrics.service.js';

@Resolver()
export class MetricsResolver {
  constructor(
    private readonly service: MetricsService,
    private readonly comparison?: ComparisonService,
  ) {}

  @Authorized(Role.Analyst)
  @Query(() => ModelMetrics, {
    description:
      'How a model’s served predictions turned out (source: realized), from outcomes recorded after each horizon. sampleSize 0 and null metrics when nothing has resolved yet.',
  })
  modelMetrics(@Args(() => ModelMetricsArgs) args: ModelMetricsArgs): Promise<ModelMetrics> {
    return this.service.modelMetrics(args);
  }

  @Authorized(Role.Analyst)
  @Query(() => ModelComparison, {
    description:
      'Two loaded versions of a strategy compared on the realized outcomes of the rows both predicted (same symbol and asOf; an active and a shadow version are scored on the same rows): per-day mean loss differences a − b (Brier, log loss), a Diebold–Mariano test, a calendar-block bootstrap interval, the minimum detectable effect at 80% power and the days still needed. UNKNOWN_STRATEGY, or BAD_USER_INPUT for a version that is not loaded, a = b, or from after to; days 0 and null figures when nothing is paired yet.',
  })
  compareModels(@Args(() => CompareModelsArgs) args: CompareModelsArgs): Promise<ModelComparison> {
    if (!this.comparison) throw unavailable('model comparisons are not available on this instance');
    return this.comparison.compareModels(args);
  }
}
