import { worstStatus, type ComponentHealth, type HealthCheck } from '../../shared/health.js';
import { withTimeout } from '../../shared/deadline.js';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down' | 'draining';
  version: string;
  components: ComponentHealth[];
  /** False when the instance should get no traffic: a component is down, or it is draining. */
  ready: boolean;
}

export interface HealthServiceOptions {
  readonly checks: readonly HealthCheck[];
  /** The gateway's version, in every report. */
  readonly version: string;
  /** A check that has not answered by then counts as down; default 3 s. */
  readonly timeoutMs?: number;
  /** Reports are reused for this long (HEALTH_CACHE_MS); default 0, every call checks. */
  readonly cacheMs?: number;
}

/**
 * Runs every component's check concurrently, each bounded by a timeout so one hung dependency cannot
 * hang the readiness probe, and folds them into one report.
 *
 * The checks touch the database and Redis, and anyone may ask (`/health/ready`, the `health` field):
 * so the components are computed at most once per `cacheMs`, and callers arriving while a computation
 * runs share it. However many ask, the dependencies see at most one probe per interval (plus the
 * time one takes). Draining is not cached: it shows at once.
 */
export class HealthService {
  #draining = false;
  #running: Promise<ComponentHealth[]> | undefined;
  #fresh: { components: ComponentHealth[]; until: number } | undefined;

  private readonly checks: readonly HealthCheck[];
  private readonly version: string;
  private readonly timeoutMs: number;
  private readonly cacheMs: number;

  constructor({ checks, version, timeoutMs = 3_000, cacheMs = 0 }: HealthServiceOptions) {
    this.checks = checks;
    this.version = version;
    this.timeoutMs = timeoutMs;
    this.cacheMs = cacheMs;
  }

  /** Called once shutdown starts: from then on the instance reports not ready. */
  markDraining(): void {
    this.#draining = true;
  }

  async report(): Promise<HealthReport> {
    const components = await this.components();
    const worst = worstStatus(components.map((c) => c.status));
    const status = this.#draining ? 'draining' : worst;
    return { status, version: this.version, components, ready: !this.#draining && worst !== 'down' };
  }

  private components(): Promise<ComponentHealth[]> {
    if (this.#fresh && performance.now() < this.#fresh.until) return Promise.resolve(this.#fresh.components);
    this.#running ??= this.compute().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  private async compute(): Promise<ComponentHealth[]> {
    const components = await Promise.all(this.checks.map((check) => this.run(check)));
    // The interval counts from when the answer is known, so a slow probe is not repeated back to back.
    if (this.cacheMs > 0) this.#fresh = { components, until: performance.now() + this.cacheMs };
    return components;
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
