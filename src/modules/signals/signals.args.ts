import { IsOptional, Max, Min } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, Float } from 'type-graphql';
import { StrategyField, SymbolsField } from '../../domain/args.js';

/**
 * Arguments of `signals`. Validated once, when the subscription starts (signals.service.ts), not on
 * every event: the resolver that passes each event through declares them only for the schema.
 * The configured symbol limit (MAX_SYMBOLS_PER_REQUEST) and "since is not in the future" need
 * configuration and a clock, so the service checks those.
 */
@ArgsType()
export class SignalsArgs {
  @SymbolsField({ description: 'Symbols to watch: 1 to MAX_SYMBOLS_PER_REQUEST (default 200)', per: 'subscription', atLeastOne: true })
  symbols!: string[];

  @StrategyField({ optional: true })
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
