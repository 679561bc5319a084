import { IsIn, IsOptional } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field } from 'type-graphql';
import { QueriedVersionField, StrategyField, SymbolArgs, SymbolsField } from '../../domain/args.js';

const AS_OF =
  'Answer as of this past instant, from the stored bars at or before it (a non-trading day answers as of the last bar before it)';
const VERSION = 'Answer with this model version; default: the version recorded as active at `asOf`, else the active one';

/** The optional `asOf` of point-in-time predictions, declared once for `prediction` and `predictions`. */
function AsOfField(): PropertyDecorator {
  return (target, key) => {
    Field(() => DateTimeISOResolver, { nullable: true, description: AS_OF })(target, key);
    IsOptional()(target, key);
  };
}

@ArgsType()
export class PredictionArgs extends SymbolArgs {
  @AsOfField()
  asOf?: Date;

  @QueriedVersionField(VERSION)
  version?: string;
}

@ArgsType()
export class PredictionsArgs {
  @SymbolsField({ description: 'Up to MAX_SYMBOLS_PER_REQUEST (default 200) symbols; duplicates are computed once', per: 'request' })
  symbols!: string[];

  @StrategyField({ optional: true })
  strategy?: string;

  @AsOfField()
  asOf?: Date;

  @QueriedVersionField(VERSION)
  version?: string;
}

@ArgsType()
export class IntervalArgs {
  @Field(() => Number, { defaultValue: 0.95, description: 'One of 0.8, 0.9, 0.95, 0.99' })
  @IsIn([0.8, 0.9, 0.95, 0.99], { message: 'level must be one of 0.8, 0.9, 0.95, 0.99' })
  level!: number;
}
