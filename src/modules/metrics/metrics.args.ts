import { IsOptional } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field } from 'type-graphql';
import { MarketSourceField, QueriedVersionField, StrategyArgs, SymbolField } from '../../domain/args.js';

@ArgsType()
export class ModelMetricsArgs extends StrategyArgs {
  @QueriedVersionField('Defaults to the strategy’s active version')
  version?: string;

  @SymbolField({ description: 'Only this symbol; default every symbol' })
  symbol?: string;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  from?: Date;

  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Inclusive, on the prediction’s asOf' })
  @IsOptional()
  to?: Date;

  @MarketSourceField()
  source?: string;
}
