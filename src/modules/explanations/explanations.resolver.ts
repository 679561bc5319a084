import { Authorized, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { Role } from '../access/index.js';
import type { Context } from '../../context/context.js';
import { Prediction, type BindAuthorizedField, type PredictionRecord } from '../predictions/index.js';
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

/**
 * `Prediction.explanation` is asked once per item of a `predictions` answer: it runs with its role checked
 * once per operation, not through type-graphql's per-item middleware (schema/sync-field.ts
 * bindAuthorizedField says why); the method above still declares it, with the same role.
 */
export function bindExplanationField(bind: BindAuthorizedField): void {
  bind('Prediction', 'explanation', ExplanationsResolver, (prediction: PredictionRecord, _args: Record<string, never>, ctx: Context) =>
    ctx.loaders.explanations.explanation.load(prediction),
  );
}
