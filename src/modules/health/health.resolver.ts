import { Ctx, Query, Resolver } from 'type-graphql';
import type { Context } from '../../context/context.js';
import { Role, roleAtLeast } from '../access/index.js';
import { Health } from './health.type.js';
import type { HealthService } from './health.service.js';

@Resolver()
export class HealthResolver {
  constructor(private readonly healthService: HealthService) {}

  // Public on purpose (no @Authorized): the same facts as GET /health/ready, for probes and status pages.
  // Component details (engine versions, data directories, error texts) are for analysts and admins only.
  @Query(() => Health, { description: 'Readiness of this instance and each component it depends on (details: analyst and above).' })
  async health(@Ctx() ctx: Context): Promise<Health> {
    const { status, version, components } = await this.healthService.report();
    const details = ctx.principal !== undefined && roleAtLeast(ctx.principal.role, Role.Analyst);
    return {
      status,
      version,
      components: components.map(({ name, status, detail }) =>
        details && detail ? { name, status, detail: withoutPaths(detail) } : { name, status },
      ),
    };
  }
}

/** Absolute file paths say how the host is laid out: only their last part is shown (`…/pglite`). */
function withoutPaths(detail: string): string {
  return detail.replace(/(?<=^|[\s(])\/[^\s,;)]+/g, (path) => `…/${path.split('/').filter(Boolean).pop() ?? ''}`);
}
