import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum ComparisonVerdict {
  A_BETTER = 'A_BETTER',
  B_BETTER = 'B_BETTER',
  NO_DIFFERENCE_YET = 'NO_DIFFERENCE_YET',
}
registerEnumType(ComparisonVerdict, {
  name: 'ComparisonVerdict',
  description:
    'A_BETTER (B_BETTER) when, over at least `ComparisonMethod.minDays` days, both the interval of the mean difference lies wholly below (above) 0 and the Diebold–Mariano p-value is below 1 − level; otherwise NO_DIFFERENCE_YET (too little evidence or no difference)',
});

@ObjectType({ description: 'An interval of the mean loss difference (a − b), from the calendar-block bootstrap.', simpleResolvers: true })
export class DifferenceInterval {
  @Field(() => Float, { description: 'Lower end' }) low!: number;
  @Field(() => Float, { description: 'Upper end' }) high!: number;
  @Field(() => Float, { description: 'Two-sided level, e.g. 0.95' }) level!: number;
  @Field(() => Boolean, {
    description: 'True when the percentile interval did not contain the mean difference and was widened to reach it',
  })
  widened!: boolean;
}

@ObjectType({
  description: 'Versions a and b compared on one loss over the rows both predicted; lower loss is better.',
  simpleResolvers: true,
})
export class LossComparison {
  @Field(() => String, {
    description: '`brier` ((p − y)²) or `logLoss` (−ln of the probability given to the outcome, p clamped to [1e-15, 1 − 1e-15])',
  })
  loss!: string;
  @Field(() => Float, { nullable: true, description: 'Mean over days of version a’s daily mean loss; null without paired rows' }) meanA!:
    number | null;
  @Field(() => Float, { nullable: true, description: 'Mean over days of version b’s daily mean loss; null without paired rows' }) meanB!:
    number | null;
  @Field(() => Float, {
    nullable: true,
    description:
      'Mean over days of the daily mean loss difference a − b (= meanA − meanB): negative favours a (lower loss), positive favours b; null without paired rows',
  })
  meanDifference!: number | null;
  @Field(() => DifferenceInterval, {
    nullable: true,
    description: 'Interval of meanDifference; null when the days span too few calendar months (see note)',
  })
  interval!: DifferenceInterval | null;
  @Field(() => Float, {
    nullable: true,
    description: 'Newey–West long-run variance of the daily differences (lag in `ComparisonMethod.lag`)',
  })
  longRunVariance!: number | null;
  @Field(() => Float, {
    nullable: true,
    description: 'Diebold–Mariano statistic meanDifference / sqrt(longRunVariance / days); null when the daily differences do not vary',
  })
  dmStatistic!: number | null;
  @Field(() => Float, { nullable: true, description: 'Two-sided p-value of dmStatistic under the standard normal' }) pValue!: number | null;
  @Field(() => Int, { description: 'UTC days of asOf with paired rows: the sample size of the test' }) days!: number;
  @Field(() => Int, { description: 'Paired rows (same symbol and asOf, both versions, realized outcome)' }) rows!: number;
  @Field(() => Float, {
    nullable: true,
    description:
      'Minimum detectable effect: the |meanDifference| a 5% two-sided test detects with 80% power on this many days, (z_0.975 + z_0.8) · sqrt(longRunVariance / days)',
  })
  mde80!: number | null;
  @Field(() => Int, {
    nullable: true,
    description:
      'More days needed to detect the observed meanDifference at 5% two-sided with 80% power, longRunVariance · (z_0.975 + z_0.8)² / meanDifference² − days, rounded up, at least 0; null (see note) when the difference is 0 or there are fewer than minDays days',
  })
  daysStillNeeded!: number | null;
  @Field(() => ComparisonVerdict, { description: 'Which version has the lower loss, if the evidence says so' }) verdict!: ComparisonVerdict;
  @Field(() => String, {
    nullable: true,
    description: 'Why a figure is null or the verdict could not be decisive; null when nothing is missing',
  })
  note!: string | null;
}

@ObjectType({ description: 'How a comparison was computed: enough to recompute it.', simpleResolvers: true })
export class ComparisonMethod {
  @Field(() => String, { description: 'The test, in words' }) test!: string;
  @Field(() => Int, { description: 'Newey–West (Bartlett) lag used' }) lag!: number;
  @Field(() => String, { description: 'How the lag is chosen from the days and the strategy’s horizon' }) lagRule!: string;
  @Field(() => String, { description: 'The interval’s resampling method, in words' }) interval!: string;
  @Field(() => String, { description: 'Resampling unit: MONTH = UTC calendar month of the days' }) block!: string;
  @Field(() => Int, { description: 'Calendar months in the data' }) blocks!: number;
  @Field(() => Int, { description: 'Bootstrap replicates drawn' }) replicates!: number;
  @Field(() => Int, { description: 'Seed of the PRNG (mulberry32) drawing the months' }) seed!: number;
  @Field(() => Float, { description: 'Two-sided level of the intervals; the verdict’s test size is 1 − level' }) level!: number;
  @Field(() => Int, { description: 'Fewest days for a verdict or a days-still-needed estimate' }) minDays!: number;
  @Field(() => Int, { description: 'Fewest calendar months for an interval' }) minBlocks!: number;
}

@ObjectType({
  description: 'Two versions of a strategy compared on the realized outcomes of the rows both predicted (same symbol and asOf).',
})
export class ModelComparison {
  @Field(() => String, { description: 'The strategy' }) strategy!: string;
  @Field(() => String, { description: 'Version a (differences are a − b)' }) a!: string;
  @Field(() => String, { description: 'Version b' }) b!: string;
  @Field(() => String, { description: 'The market whose recorded predictions were compared' }) source!: string;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'The `from` asked, else the earliest paired asOf day; null when none' })
  from!: Date | null;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'The `to` asked, else the latest paired asOf day; null when none' })
  to!: Date | null;
  @Field(() => LossComparison, { description: 'On the Brier score' }) brier!: LossComparison;
  @Field(() => LossComparison, { description: 'On log loss' }) logLoss!: LossComparison;
  @Field(() => ComparisonMethod, { description: 'How the figures were computed' }) method!: ComparisonMethod;
}
