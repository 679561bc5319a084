import { Field, Float, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'One input of the model and how much it moved this prediction away from the baseline' })
export class Factor {
  @Field(() => String, { description: 'Feature name, as in `ModelVersion.features`' }) feature!: string;
  @Field(() => Float, { description: 'The value the model saw' }) value!: number;
  @Field(() => Float, { description: 'The value in the baseline input (the feature’s mean over the training rows)' }) baselineValue!: number;
  @Field(() => Float, {
    description: 'What this input added to the probability (Shapley value, in probability units); all contributions sum to `probability − baseline`',
  })
  contribution!: number;
  @Field(() => String, { description: 'The value in words, where it sits against the training data, and its effect' }) description!: string;
}

@ObjectType({ description: 'Why the model gave this probability, and how far to trust it' })
export class Explanation {
  @Field(() => String, { description: '`shapley-exact` (every coalition) or `shapley-permutation` (32 seeded feature orders in antithetic pairs)' })
  method!: string;
  @Field(() => Float, { description: 'The calibrated probability the model gives the baseline input (every feature at its training mean)' })
  baseline!: number;
  @Field(() => [Factor], { description: 'Every input, largest absolute contribution first' }) factors!: Factor[];
  @Field(() => String, { description: 'One sentence: the prediction against the baseline and what moved it most each way' }) summary!: string;
  @Field(() => Float, {
    nullable: true,
    description: 'How often this model version was right at about this confidence: see `historicalAccuracySource`; null when neither source has enough samples',
  })
  historicalAccuracy!: number | null;
  @Field(() => String, {
    description:
      '`history`: realized outcomes of this model version’s recorded predictions in the 1%-wide confidence buckets spanning ±0.025 around this confidence; `offline`: the held-out calibration bin of this probability in the manifest; `none`',
  })
  historicalAccuracySource!: 'history' | 'offline' | 'none';
  @Field(() => Int, { description: 'Outcomes behind `historicalAccuracy` (0 when none)' }) historicalAccuracySamples!: number;
}
