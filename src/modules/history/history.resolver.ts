import { Args, Authorized, Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import { Role } from '../access/index.js';
import type { Context } from '../../context/context.js';
import { Prediction, type BindAuthorizedField, type PredictionRecord } from '../predictions/index.js';
import { ConfidenceHistoryArgs, ConfidenceTrendsArgs, HistoryLastArgs } from './history.args.js';
import type { ConfidencePointRow } from './history-read.repository.js';
import type { ConfidenceTrend as ConfidenceTrendRecord, HistoryQueryService } from './history-query.service.js';
import { ConfidencePoint, ConfidenceTrend } from './history.type.js';

@Resolver()
export class HistoryResolver {
  constructor(private readonly service: HistoryQueryService) {}

  @Authorized(Role.Analyst)
  @Query(() => [ConfidencePoint], {
    description: 'Recorded confidence of one symbol and strategy, bucketed over time (oldest first; empty buckets omitted)',
  })
  confidenceHistory(@Args(() => ConfidenceHistoryArgs) args: ConfidenceHistoryArgs): Promise<ConfidencePointRow[]> {
    return this.service.confidenceHistory(args);
  }

  @Authorized(Role.Analyst)
  @Query(() => [ConfidenceTrend], {
    description: 'Confidence statistics per symbol over a window ending at its latest recorded prediction, in the order asked',
  })
  confidenceTrends(@Args(() => ConfidenceTrendsArgs) args: ConfidenceTrendsArgs): Promise<ConfidenceTrendRecord[]> {
    return this.service.confidenceTrends(args);
  }
}

/** `Prediction.history`, batched per request: every prediction of one operation costs ONE query together. */
@Resolver(() => Prediction)
export class PredictionHistoryResolver {
  constructor(private readonly service: HistoryQueryService) {}

  // Declares the field (description, arguments, role); bindPredictionHistoryField runs it.
  @Authorized(Role.Analyst)
  @FieldResolver(() => [ConfidencePoint], {
    description:
      'The latest recorded predictions of this symbol, strategy and model version (from the serving market unless `source` says otherwise), oldest first. The prediction being served appears once the history writer has flushed it (HISTORY_FLUSH_INTERVAL_MS).',
  })
  history(
    @Root() prediction: PredictionRecord,
    @Args(() => HistoryLastArgs) args: HistoryLastArgs,
    @Ctx() ctx: Context,
  ): Promise<ConfidencePointRow[]> {
    return historyOf(this.service, prediction, args, ctx);
  }
}

function historyOf(service: HistoryQueryService, prediction: PredictionRecord, { last, source }: HistoryLastArgs, ctx: Context) {
  return ctx.loaders.history.last.load({
    symbol: prediction.symbol,
    strategy: prediction.strategy,
    version: prediction.model.manifest.version,
    source: source ?? service.servingMarket,
    last: last ?? 20,
  });
}

/**
 * `Prediction.history` is asked once per item of a `predictions` answer: it runs with its role checked
 * once per operation, not through type-graphql's per-item middleware (schema/sync-field.ts
 * bindAuthorizedField says why); the method above still declares it, with the same role and arguments.
 */
export function bindPredictionHistoryField(bind: BindAuthorizedField, service: HistoryQueryService): void {
  bind(
    'Prediction',
    'history',
    PredictionHistoryResolver,
    (prediction: PredictionRecord, args: HistoryLastArgs, ctx: Context) => historyOf(service, prediction, args, ctx),
    HistoryLastArgs,
  );
}
