import { Args, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../context/context.js';
import { Role } from './roles.js';
import { ErrorCode, codedError } from '../../shared/errors.js';
import { CreateApiKeyArgs, RevokeApiKeyArgs } from './api-keys.args.js';
import type { ApiKeysService } from './api-keys.service.js';
import { ApiKey, CreatedApiKey } from './api-keys.type.js';

/** Admin-only management of API keys; the same operations as `npm run keys`. */
@Resolver(() => ApiKey)
export class ApiKeysResolver {
  constructor(private readonly keys: ApiKeysService) {}

  @Authorized(Role.Admin)
  @Query(() => [ApiKey], { description: 'Every API key, revoked ones included (admin)' })
  apiKeys(): Promise<ApiKey[]> {
    return this.keys.list();
  }

  @Authorized(Role.Admin)
  @Mutation(() => CreatedApiKey, { description: 'Creates an API key; the key is in this response only (admin)' })
  async createApiKey(@Args(() => CreateApiKeyArgs) { name, role }: CreateApiKeyArgs, @Ctx() ctx: Context): Promise<CreatedApiKey> {
    const { key, record } = await this.keys.create({ name, role: role as Role, actor: ctx.principal!.id });
    return { key, apiKey: record };
  }

  @Authorized(Role.Admin)
  @Mutation(() => ApiKey, { description: 'Revokes an API key at once, on every instance (admin)' })
  async revokeApiKey(@Args(() => RevokeApiKeyArgs) { id }: RevokeApiKeyArgs, @Ctx() ctx: Context): Promise<ApiKey> {
    const row = await this.keys.revoke(id, ctx.principal!.id);
    if (!row) throw codedError(ErrorCode.BAD_USER_INPUT, `no API key with id ${id}`);
    return row;
  }
}
