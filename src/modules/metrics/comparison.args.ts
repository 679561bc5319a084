import { IsOptional, Max, Min } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, Float } from 'type-graphql';
import { MarketSourceField, StrategyArgs } from '../../domain/args.js';
import { QUERIED_VERSION_PATTERN, queriedVersionMessage } from '../../domain/names.js';
import { Matches } from 'class-validator';

@ArgsType()
export class CompareModelsArgs extends StrategyArgs {
  @Field(() => String, { description: 'Version a, e.g. the active one (differences are a − b)' })
  @Matches(QUERIED_VERSION_PATTERN, { message: `a: ${queriedVersionMessage}` })
  a!: string;

  @Field(() => String, { description: 'Version b, e.g. the shadow one' })
  @Matches(QUERIED_VERSION_PATTERN, { message: `b: ${queriedVersionMessage}` })
  b!: string;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  from?: Date;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  to?: Date;

  @Field(() => Float, {
    defaultValue: 0.95,
    description: 'Two-sided level of the intervals (the verdict’s test size is 1 − level), in [0.5, 0.999]',
  })
  @Min(0.5, { message: 'level must be at least 0.5' })
  @Max(0.999, { message: 'level must be at most 0.999' })
  level!: number;

  @MarketSourceField()
  source?: string;
}
