import { Query, Resolver } from 'type-graphql';
import { Health } from './health.type.js';
import type { HealthService } from './health.service.js';

@Resolver()
export class HealthResolver {
  constructor(private readonly healthService: HealthService) {}

  // Public on purpose (no @Authorized): the same facts as GET /health/ready, for probes and status pages.
  @Query(() => Health, { description: 'Readiness of this instance and each component it depends on.' })
  async health(): Promise<Health> {
    const { status, version, components } = await this.healthService.report();
    return { status, version, components };
  }
}
