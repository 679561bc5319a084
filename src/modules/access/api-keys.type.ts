import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, ID, ObjectType } from 'type-graphql';

@ObjectType({ description: 'An API key, without the key itself (only its first characters)' })
export class ApiKey {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { description: '`viewer`, `analyst` or `admin`' }) role!: string;
  @Field(() => String, { description: 'The first characters of the key, to recognise it' }) prefix!: string;
  @Field(() => DateTimeISOResolver) createdAt!: Date;
  @Field(() => String, { description: 'Principal that created it (`key:…`, `jwt:…`, `cli:…`)' }) createdBy!: string;
  @Field(() => DateTimeISOResolver, { nullable: true }) revokedAt!: Date | null;
}

@ObjectType({ description: 'A new API key. `key` is shown this once: only its hash is stored.' })
export class CreatedApiKey {
  @Field(() => String) key!: string;
  @Field(() => ApiKey) apiKey!: ApiKey;
}
