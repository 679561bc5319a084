import { IsOptional, Matches } from 'class-validator';
import { DateTimeISOResolver } from 'graphql-scalars';
import { ArgsType, Field } from 'type-graphql';
import { SYMBOL_PATTERN } from '../../infra/market-data/market-data.js';

@ArgsType()
export class ModelMetricsArgs {
  @Field(() => String)
  @Matches(/^[a-z0-9][a-z0-9-]{0,40}$/, { message: 'strategy must be a lower-case name such as direction-1d' })
  strategy!: string;

  @Field(() => String, { nullable: true, description: 'Defaults to the strategy’s active version' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'version must be a name such as v1' })
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
