import { IsOptional, Matches } from 'class-validator';
import { ArgsType, Field } from 'type-graphql';
import { STRATEGY_PATTERN, strategyMessage } from '../predictions/predictions.args.js';

const VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const versionMessage = 'version must be 1-64 of A-Z a-z 0-9 . _ - (a directory name under the strategy in the models directory)';

@ArgsType()
export class StrategyArgs {
  @Field(() => String)
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy!: string;
}

@ArgsType()
export class ActivateModelVersionArgs {
  @Field(() => String)
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy!: string;

  @Field(() => String)
  @Matches(VERSION_PATTERN, { message: versionMessage })
  version!: string;
}

@ArgsType()
export class ShadowModelVersionArgs {
  @Field(() => String)
  @Matches(STRATEGY_PATTERN, { message: strategyMessage })
  strategy!: string;

  @Field(() => String, { nullable: true, description: 'The version to run in shadow; null stops the shadow' })
  @IsOptional()
  @Matches(VERSION_PATTERN, { message: versionMessage })
  version?: string | null;
}
