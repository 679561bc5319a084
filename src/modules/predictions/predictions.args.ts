import { IsIn } from 'class-validator';
import { ArgsType, Field } from 'type-graphql';
import { StrategyField, SymbolsField } from '../../domain/args.js';

// `prediction(symbol:, strategy:)` takes the domain's SymbolArgs as they are.

@ArgsType()
export class PredictionsArgs {
  @SymbolsField({ description: 'Up to MAX_SYMBOLS_PER_REQUEST (default 200) symbols; duplicates are computed once', per: 'request' })
  symbols!: string[];

  @StrategyField({ optional: true })
  strategy?: string;
}

@ArgsType()
export class IntervalArgs {
  @Field(() => Number, { defaultValue: 0.95, description: 'One of 0.8, 0.9, 0.95, 0.99' })
  @IsIn([0.8, 0.9, 0.95, 0.99], { message: 'level must be one of 0.8, 0.9, 0.95, 0.99' })
  level!: number;
}
