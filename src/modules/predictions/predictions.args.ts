import { ArrayMaxSize, IsIn, IsOptional, Matches } from 'class-validator';
import { ArgsType, Field } from 'type-graphql';
import { SYMBOL_PATTERN } from '../../infra/market-data/market-data.js';

// Shared by every module's arguments (history, metrics, signals, models).
export const STRATEGY_PATTERN = /^[a-z0-9][a-z0-9-]{0,40}$/;
export const strategyMessage = 'strategy must be a lower-case name such as direction-1d';
export const symbolMessage = 'must be an upper-case ticker such as AAPL or BRK.B (1-10 of A-Z 0-9 . -, starting with a letter)';
/** A model version as queried (history, metrics); models.args.ts has the directory-name rule for activation. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const versionMessage = 'version must be a name such as v1';

@ArgsType()
export class PredictionArgs {
  @Field(() => String)
  @Matches(SYMBOL_PATTERN, { message: `symbol ${symbolMessage}` })
  symbol!: string;

  @Field(() => String, { nullable: true, description: 'Defaults to `direction-1d`' })
  @IsOptional()
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy?: string;
}

@ArgsType()
export class PredictionsArgs {
  @Field(() => [String], { description: 'Up to MAX_SYMBOLS_PER_REQUEST (default 200) symbols; duplicates are computed once' })
  @ArrayMaxSize(5_000, { message: 'symbols: at most 5000 per request' }) // the configured limit is checked by the service
  @Matches(SYMBOL_PATTERN, { each: true, message: `each of symbols ${symbolMessage}` })
  symbols!: string[];

  @Field(() => String, { nullable: true, description: 'Defaults to `direction-1d`' })
  @IsOptional()
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy?: string;
}

@ArgsType()
export class IntervalArgs {
  @Field(() => Number, { defaultValue: 0.95, description: 'One of 0.8, 0.9, 0.95, 0.99' })
  @IsIn([0.8, 0.9, 0.95, 0.99], { message: 'level must be one of 0.8, 0.9, 0.95, 0.99' })
  level!: number;
}
