import { ArrayMaxSize, ArrayMinSize, IsOptional, Matches, Max, Min } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, Float } from 'type-graphql';
import { SYMBOL_PATTERN } from '../../infra/market-data/market-data.js';
import { STRATEGY_PATTERN, strategyMessage, symbolMessage } from '../predictions/predictions.args.js';

/**
 * Arguments of `signals`. Validated once, when the subscription starts (signals.service.ts), not on
 * every event: the resolver that passes each event through declares them only for the schema.
 * The configured symbol limit (MAX_SYMBOLS_PER_REQUEST) and "since is not in the future" need
 * configuration and a clock, so the service checks those.
 */
@ArgsType()
export class SignalsArgs {
  @Field(() => [String], { description: 'Symbols to watch: 1 to MAX_SYMBOLS_PER_REQUEST (default 200)' })
  @ArrayMinSize(1, { message: 'symbols: name at least one symbol' })
  @ArrayMaxSize(5_000, { message: 'symbols: at most 5000 per subscription' })
  @Matches(SYMBOL_PATTERN, { each: true, message: `each of symbols ${symbolMessage}` })
  symbols!: string[];

  @Field(() => String, { nullable: true, description: 'Defaults to `direction-1d`' })
  @IsOptional()
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy?: string | null;

  @Field(() => Float, { nullable: true, description: 'Only predictions at least this confident (0 to 1)' })
  @IsOptional()
  @Min(0, { message: 'minConfidence must be between 0 and 1' })
  @Max(1, { message: 'minConfidence must be between 0 and 1' })
  minConfidence?: number | null;

  @Field(() => DateTimeISOResolver, {
    nullable: true,
    description: 'Resume: first the recorded predictions with asOf after this time (oldest first), then live ones, with no gap or repeat',
  })
  @IsOptional()
  since?: Date | null;
}
