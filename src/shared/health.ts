/**
 * The health contract every infrastructure part can implement without knowing the server: a name and
 * a check. `down` makes the gateway unready (HTTP 503); `degraded` keeps it ready but says what is
 * missing (e.g. Redis down while in-process fallbacks serve).
 */
export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface ComponentHealth {
  readonly name: string;
  readonly status: HealthStatus;
  readonly detail?: string | undefined;
}

export interface HealthCheck {
  readonly name: string;
  check(): Promise<Omit<ComponentHealth, 'name'>>;
}

/** The worst of several statuses: any `down` wins, then any `degraded`. */
export function worstStatus(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = 'ok';
  for (const status of statuses) {
    if (status === 'down') return 'down';
    if (status === 'degraded') worst = 'degraded';
  }
  return worst;
}
