import { ArrayMaxSize, IsOptional, Matches } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, InputType } from 'type-graphql';
import { QueriedVersionField, StrategyArgs } from '../../domain/args.js';
import { SYMBOL_PATTERN, symbolMessage } from '../../domain/names.js';

@InputType({ description: 'A date range over stored bars, both ends inclusive (on the bar’s date)' })
export class DateWindow {
  @Field(() => DateTimeISOResolver, { description: 'First day (inclusive)' }) from!: Date;
  @Field(() => DateTimeISOResolver, { description: 'Last day (inclusive)' }) to!: Date;
}

@ArgsType()
export class DriftArgs extends StrategyArgs {
  @QueriedVersionField('Defaults to the strategy’s active version')
  version?: string;

  @Field(() => DateWindow, { description: 'The recent period whose feature and probability distributions are compared' })
  window!: DateWindow;

  @Field(() => [String], { nullable: true, description: 'Stored symbols to measure; default every stored symbol (at most 100)' })
  @IsOptional()
  @ArrayMaxSize(5_000, { message: 'symbols: at most 5000 per request' })
  @Matches(SYMBOL_PATTERN, { each: true, message: `each of symbols ${symbolMessage}` })
  symbols?: string[];
}
