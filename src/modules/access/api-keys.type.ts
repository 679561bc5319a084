import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, ID, ObjectType } from 'type-graphql';

@ObjectType({ description: 'An API key, without the key itself (only its first characters)' })
export class ApiKey {
  @Field(() => ID, { description: 'The key’s id (a UUID): what `revokeApiKey` takes' }) id!: string;
  @Field(() => String, { description: 'Who or what the key is for, as given at creation' }) name!: string;
  @Field(() => String, { description: '`viewer`, `analyst` or `admin`' }) role!: string;
  @Field(() => String, { description: 'The first characters of the key, to recognise it' }) prefix!: string;
  @Field(() => DateTimeISOResolver, { description: 'When it was created' }) createdAt!: Date;
  @Field(() => String, { description: 'Principal that created it (`key:…`, `jwt:…`, `cli:…`)' }) createdBy!: string;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'When it was revoked; null while it is valid' }) revokedAt!: Date | null;
}

@ObjectType({ description: 'A new API key. `key` is shown this once: only its hash is stored.' })
export class CreatedApiKey {
  @Field(() => String, { description: 'The secret key, sent as `Authorization: Bearer <key>`: shown in this response only, store it now' })
  key!: string;
  @Field(() => ApiKey, { description: 'The key’s record, as `apiKeys` lists it' }) apiKey!: ApiKey;
}
