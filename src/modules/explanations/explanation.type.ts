import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'One input of the model and how much it moved this prediction away from the baseline' })
export class Factor {
  @Field(() => String, { description: 'Feature name, as in `ModelVersion.features`' }) feature!: string;
  @Field(() => Float, { description: 'The value the model saw' }) value!: number;
  @Field(() => Float, { description: 'The value in the baseline input (the feature’s mean over the training rows)' })
  baselineValue!: number;
  @Field(() => Float, {
    description:
      'What this input added to the probability (Shapley value, in probability units); all contributions sum to `probability − baseline`',
  })
  contribution!: number;
  @Field(() => String, { description: 'The value in words, where it sits against the training data, and its effect' }) description!: string;
}

@ObjectType({
  description:
    'What stands behind `historicalAccuracy`: how many outcomes on how many distinct days, with an interval; or why there is no figure',
  simpleResolvers: true,
})
export class AccuracyEvidence {
  @Field(() => Float, { nullable: true, description: 'Same as `historicalAccuracy`: null when the evidence is thin (see `reason`)' })
  accuracy!: number | null;
  @Field(() => Float, { nullable: true, description: 'Lower end of the interval around `accuracy`; null with it' }) low!: number | null;
  @Field(() => Float, { nullable: true, description: 'Upper end of the interval around `accuracy`; null with it' }) high!: number | null;
  @Field(() => Float, { description: 'Two-sided level of [low, high]' }) level!: number;
  @Field(() => String, { description: '`history`, `offline` or `none`, as `historicalAccuracySource`' }) source!: string;
  @Field(() => Int, {
    description:
      'Outcomes behind the figure; with source `none`, the realized outcomes found at this confidence (too few, or on too few days)',
  })
  rows!: number;
  @Field(() => Int, {
    description:
      'Distinct days (UTC date of the prediction’s asOf) those outcomes come from: outcomes of one day move together, so days, not rows, are the evidence',
  })
  days!: number;
  @Field(() => String, {
    description:
      'How [low, high] is made: the share of right calls with a day-clustered (sandwich) standard error, never below the binomial one, ±z·se, clamped to [0, 1]; it always contains `accuracy`',
  })
  method!: string;
  @Field(() => String, { nullable: true, description: 'Why `accuracy` is null; null when there is a figure' }) reason!: string | null;
}

@ObjectType({ description: 'Why the model gave this probability, and how far to trust it' })
export class Explanation {
  @Field(() => String, {
    description: '`shapley-exact` (every coalition) or `shapley-permutation` (32 seeded feature orders in antithetic pairs)',
  })
  method!: string;
  @Field(() => Float, { description: 'The calibrated probability the model gives the baseline input (every feature at its training mean)' })
  baseline!: number;
  @Field(() => [Factor], { description: 'Every input, largest absolute contribution first' }) factors!: Factor[];
  @Field(() => String, { description: 'One sentence: the prediction against the baseline and what moved it most each way' })
  summary!: string;
  @Field(() => Float, {
    nullable: true,
    description:
      'How often this model version was right at about this confidence: see `historicalAccuracySource`; null when neither source has enough evidence (at least 30 outcomes on at least 20 distinct days): `historicalEvidence` says what there is and why',
  })
  historicalAccuracy!: number | null;
  @Field(() => String, {
    description:
      '`history`: realized outcomes of this model version’s recorded predictions in the 1%-wide confidence buckets spanning ±0.025 around this confidence; `offline`: the held-out calibration bin of this probability in the manifest; `none`',
  })
  historicalAccuracySource!: 'history' | 'offline' | 'none';
  @Field(() => Int, { description: 'Outcomes behind `historicalAccuracy` (0 when none)' }) historicalAccuracySamples!: number;
  @Field(() => AccuracyEvidence, {
    description: 'Distinct days, rows and an interval behind `historicalAccuracy`, or the reason it is null',
  })
  historicalEvidence!: AccuracyEvidence;
}
