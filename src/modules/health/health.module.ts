import type { Config } from '../../config/index.js';
import type { HealthCheck } from '../../shared/health.js';
import { VERSION } from '../../shared/version.js';
import { HealthService } from './health.service.js';

export interface HealthModuleDeps {
  readonly config: Pick<Config, 'health'>;
  /** Every part's readiness, in the order the report lists them. */
  readonly checks: readonly HealthCheck[];
}

export interface HealthModule {
  readonly service: HealthService;
}

/** Liveness and readiness: the checks the other modules and the infrastructure contribute. */
export function createHealthModule({ config, checks }: HealthModuleDeps): HealthModule {
  return { service: new HealthService({ checks, version: VERSION, cacheMs: config.health.cacheMs }) };
}
