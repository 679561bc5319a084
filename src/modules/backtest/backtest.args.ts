import { IsIn, IsNumber, IsOptional } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field, Float } from 'type-graphql';
import { QueriedVersionField, StrategyArgs, SymbolsField } from '../../domain/args.js';
import { RULES, type Rule } from './backtest.simulate.js';
import { RuleEnum } from './backtest.type.js';

@ArgsType()
export class BacktestArgs extends StrategyArgs {
  @QueriedVersionField('Defaults to the strategy’s active version')
  version?: string;

  @SymbolsField({ description: 'The universe traded (at most BACKTEST limits allow; each once)', per: 'request', atLeastOne: true })
  symbols!: string[];

  @Field(() => DateTimeISOResolver, { description: 'First decision day (inclusive)' })
  from!: Date;

  @Field(() => DateTimeISOResolver, { description: 'Last bar used (inclusive): the last decision day is the trading day before it' })
  to!: Date;

  @Field(() => RuleEnum, { defaultValue: 'LONG_SHORT', description: 'How predictions become positions each day' })
  @IsIn(RULES)
  rule!: Rule;

  @Field(() => Float, { defaultValue: 0, description: 'Cost per unit of turnover, in basis points (0..1000)' })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  costBps!: number;

  @Field(() => Float, { nullable: true, description: 'TOP_BOTTOM_QUANTILE: share held long and short each (0..0.5], default 0.2' })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  quantile?: number;
}
