import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType } from 'type-graphql';
import type { Signal } from '../../domain/signal.js';
import { SignalEnum } from '../predictions/index.js';

// simpleResolvers: a year of buckets is thousands of these with seven plain properties each; without
// it type-graphql wraps every field in a resolver of its own (for middlewares and field auth, which
// these fields do not use), and graphql-js calls it once per field per point.
@ObjectType({
  description:
    'Recorded confidence over one time bucket (confidenceHistory) or of one recorded prediction (Prediction.history, where count is 1 and min = max = confidence).',
  simpleResolvers: true,
})
export class ConfidencePoint {
  @Field(() => DateTimeISOResolver, { description: 'Start of the bucket (buckets are aligned to UTC), or the prediction’s asOf' })
  time!: Date;
  @Field(() => Float, { description: 'Mean probability of the event in the bucket' }) probability!: number;
  @Field(() => Float, { description: 'Mean confidence in the bucket' }) confidence!: number;
  @Field(() => Float, { description: 'Lowest confidence in the bucket' }) min!: number;
  @Field(() => Float, { description: 'Highest confidence in the bucket' }) max!: number;
  @Field(() => Int, { description: 'Predictions recorded in the bucket' }) count!: number;
  @Field(() => SignalEnum, { nullable: true, description: 'Signal of the latest prediction in the bucket' }) signal!: Signal | null;
}

@ObjectType({
  description:
    'Confidence statistics of one symbol over a window ending at its latest recorded prediction. Null statistics (and samples 0) when nothing is recorded.',
})
export class ConfidenceTrend {
  @Field(() => String, { description: 'The ticker, as asked' }) symbol!: string;
  @Field(() => String, { description: 'The strategy whose recorded predictions were read' }) strategy!: string;
  @Field(() => Float, { nullable: true, description: 'Confidence of the latest recorded prediction' }) current!: number | null;
  @Field(() => Float, { nullable: true, description: 'Mean confidence in the window' }) mean!: number | null;
  @Field(() => Float, { nullable: true, description: 'Lowest confidence in the window' }) min!: number | null;
  @Field(() => Float, { nullable: true, description: 'Highest confidence in the window' }) max!: number | null;
  @Field(() => Float, { nullable: true, description: 'Least-squares slope of confidence over time, in confidence per day' }) slope!:
    number | null;
  @Field(() => Float, { nullable: true, description: 'Sample standard deviation of confidence in the window' }) volatility!: number | null;
  @Field(() => Int, { description: 'Predictions in the window' }) samples!: number;
}
