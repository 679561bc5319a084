import { IsIn, IsUUID, Length } from 'class-validator';
import { ArgsType, Field, ID } from 'type-graphql';
import { ROLES } from './roles.js';

@ArgsType()
export class CreateApiKeyArgs {
  @Field(() => String, { description: 'Who or what the key is for' })
  @Length(1, 100, { message: 'name must be 1-100 characters' })
  name!: string;

  @Field(() => String, { description: '`viewer`, `analyst` or `admin`' })
  @IsIn(ROLES as string[], { message: 'role must be one of viewer, analyst, admin' })
  role!: string;
}

@ArgsType()
export class RevokeApiKeyArgs {
  @Field(() => ID, { description: 'The key’s id (`ApiKey.id`)' })
  @IsUUID('4', { message: 'id must be an API key id (a UUID)' })
  id!: string;
}
