import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { ArgsType, Field, Int } from 'type-graphql';
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

/** Most decisions one `Strategy.promotions` returns. */
export const MAX_PROMOTIONS = 200;

@ArgsType()
export class PromotionsArgs {
  // Nullable like `history(last:)`: an explicit null means the default.
  @Field(() => Int, { nullable: true, defaultValue: 20, description: `How many of the latest decisions (1..${MAX_PROMOTIONS}; null: 20)` })
  @IsOptional()
  @IsInt()
  @Min(1, { message: `last must be between 1 and ${MAX_PROMOTIONS}` })
  @Max(MAX_PROMOTIONS, { message: `last must be between 1 and ${MAX_PROMOTIONS}` })
  last?: number | null;
}
