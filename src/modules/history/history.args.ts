import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, Int } from 'type-graphql';
import { MarketSourceField, QueriedVersionField, StrategyField, SymbolArgs, SymbolsField } from '../../domain/args.js';

/** Most predictions `Prediction.history(last:)` returns. */
export const MAX_HISTORY_LAST = 1_000;

/** symbol and strategy as in `prediction`. */
@ArgsType()
export class ConfidenceHistoryArgs extends SymbolArgs {
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive. Defaults to 30 days before `to`' })
  @IsOptional()
  from?: Date;

  @Field(() => DateTimeISOResolver, {
    nullable: true,
    description:
      'Inclusive. Defaults to the latest prediction of the symbol and strategy recorded from the market read (so stored historical bars work too)',
  })
  @IsOptional()
  to?: Date;

  @Field(() => String, {
    nullable: true,
    description:
      '"<count> <unit>", unit one of second, minute, hour, day, week (e.g. "5 minutes", "1 hour", "1 day"); at most 10,000 buckets per query. Defaults to the smallest of 1 minute, 5 minutes, 15 minutes, 1 hour, 6 hours, 1 day, 1 week giving at most 1,000 buckets',
  })
  @IsOptional()
  bucket?: string;

  @QueriedVersionField('Only this model version; default every version of the strategy')
  version?: string;

  @MarketSourceField()
  source?: string;
}

@ArgsType()
export class ConfidenceTrendsArgs {
  @SymbolsField({ description: 'Up to MAX_SYMBOLS_PER_REQUEST symbols', per: 'request' })
  symbols!: string[];

  @StrategyField({ optional: true })
  strategy?: string;

  @Field(() => String, {
    nullable: true,
    description: 'Span ending at each symbol’s latest recorded prediction, e.g. "7 days" (the default) or "12 hours"',
  })
  @IsOptional()
  window?: string;

  @QueriedVersionField('Only this model version; default every version of the strategy')
  version?: string;

  @MarketSourceField()
  source?: string;
}

@ArgsType()
export class HistoryLastArgs {
  // Nullable as in the contract (`last: Int = 20`): an explicit null means the default.
  @Field(() => Int, {
    nullable: true,
    defaultValue: 20,
    description: `How many of the latest recorded predictions (1..${MAX_HISTORY_LAST}; null: 20)`,
  })
  @IsOptional()
  @IsInt()
  @Min(1, { message: `last must be between 1 and ${MAX_HISTORY_LAST}` })
  @Max(MAX_HISTORY_LAST, { message: `last must be between 1 and ${MAX_HISTORY_LAST}` })
  last?: number | null;

  @MarketSourceField()
  source?: string;
}
