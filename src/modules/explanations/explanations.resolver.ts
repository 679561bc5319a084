import { Authorized, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { Role } from '../access/index.js';
import type { Context } from '../../context/context.js';
import { Prediction, type PredictionRecord } from '../predictions/index.js';
import { Explanation } from './explanation.type.js';

/** `Prediction.explanation`, kept beside its module rather than in the predictions resolver. */
@Resolver(() => Prediction)
export class ExplanationsResolver {
  @Authorized(Role.Analyst)
  @FieldResolver(() => Explanation, {
    description:
      'Why the model gave this probability (Shapley attributions that sum to probability − baseline) and how often it was right at this confidence',
  })
  explanation(@Root() prediction: PredictionRecord, @Ctx() ctx: Context): Promise<Explanation> {
    // Through the per-request loader: every explanation of the request is computed in one batch.
    return ctx.loaders.explanations.explanation.load(prediction);
  }
}
