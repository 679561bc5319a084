import { IsOptional, Matches } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field } from 'type-graphql';
import { SYMBOL_PATTERN } from '../../infra/market-data/market-data.js';
import { STRATEGY_PATTERN, strategyMessage, VERSION_PATTERN, versionMessage } from '../predictions/predictions.args.js';

@ArgsType()
export class ModelMetricsArgs {
  @Field(() => String)
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy!: string;

  @Field(() => String, { nullable: true, description: 'Defaults to the strategy’s active version' })
  @IsOptional()
  @Matches(VERSION_PATTERN, { message: versionMessage })
  version?: string;

  @Field(() => String, { nullable: true, description: 'Only this symbol; default every symbol' })
  @IsOptional()
  @Matches(SYMBOL_PATTERN, { message: 'symbol must be an upper-case ticker such as AAPL or BRK.B' })
  symbol?: string;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  from?: Date;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  to?: Date;
}
