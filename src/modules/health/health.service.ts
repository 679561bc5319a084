import { worstStatus, type ComponentHealth, type HealthCheck } from '../../shared/health.js';
import { withTimeout } from '../../shared/deadline.js';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down' | 'draining';
  version: string;
  components: ComponentHealth[];
  /** False when the instance should get no traffic: a component is down, or it is draining. */
  ready: boolean;
}

/**
 * Runs every component's check concurrently, each bounded by a timeout so one hung dependency cannot
 * hang the readiness probe, and folds them into one report.
 */
export class HealthService {
  #draining = false;

  constructor(
    private readonly checks: readonly HealthCheck[],
    private readonly version: string,
    private readonly timeoutMs = 3_000,
  ) {}

  /** Called once shutdown starts: from then on the instance reports not ready. */
  markDraining(): void {
    this.#draining = true;
  }

  async report(): Promise<HealthReport> {
    const components = await Promise.all(this.checks.map((check) => this.run(check)));
    const worst = worstStatus(components.map((c) => c.status));
    const status = this.#draining ? 'draining' : worst;
    return { status, version: this.version, components, ready: !this.#draining && worst !== 'down' };
  }

  private async run(check: HealthCheck): Promise<ComponentHealth> {
    try {
      const result = await withTimeout(check.check(), this.timeoutMs);
      return { name: check.name, ...result };
    } catch (error) {
      return { name: check.name, status: 'down', detail: (error as Error).message };
    }
  }
}
