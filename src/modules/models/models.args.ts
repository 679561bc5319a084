import { IsOptional, Matches } from 'class-validator';
import { ArgsType, Field } from 'type-graphql';
import { StrategyArgs } from '../../domain/args.js';
import { VERSION_PATTERN, versionMessage } from '../../domain/names.js';

// `rollbackModelVersion(strategy:)` takes the domain's StrategyArgs as they are.

@ArgsType()
export class ActivateModelVersionArgs extends StrategyArgs {
  @Field(() => String, { description: 'The version to serve: its directory under the strategy in the models directory' })
  @Matches(VERSION_PATTERN, { message: versionMessage })
  version!: string;
}

@ArgsType()
export class ShadowModelVersionArgs extends StrategyArgs {
  @Field(() => String, { nullable: true, description: 'The version to run in shadow; null stops the shadow' })
  @IsOptional()
  @Matches(VERSION_PATTERN, { message: versionMessage })
  version?: string | null;
}
