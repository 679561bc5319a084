import type { HealthCheck } from '../../shared/health.js';
import type { ApiKeysService } from './api-keys.service.js';

/**
 * Readiness of API-key authentication (the `api-keys` component): can this instance tell a good key from
 * a bad one right now? One lookup (of a hash no key has) answers it.
 *
 * - the lookup answers: `ok`;
 * - it does not (PostgreSQL unreachable) but keys were verified recently: `degraded`, still ready:
 *   callers using those keys are served (each for up to API_KEY_REMEMBER_S after its last check), any
 *   other key is refused with UNAVAILABLE;
 * - it does not and no key is remembered: `down` (HTTP 503) when API keys are the only way in, since
 *   no authenticated request can be served; `degraded` when JWTs are accepted too (they need no database).
 */
export function apiKeysHealth(keys: Pick<ApiKeysService, 'probe' | 'memory'>, jwtAccepted: boolean, timeoutMs = 2_000): HealthCheck {
  return {
    name: 'api-keys',
    async check() {
      if (await keys.probe(timeoutMs)) return { status: 'ok', detail: 'checked in the database on every request' };
      const { remembered, ttlMs } = keys.memory;
      const seconds = Math.round(ttlMs / 1000);
      if (remembered > 0) {
        return {
          status: 'degraded',
          detail: `database unreachable: ${remembered} API key(s) verified in the last ${seconds} s still accepted; any other key gets UNAVAILABLE`,
        };
      }
      return {
        status: jwtAccepted ? 'degraded' : 'down',
        detail: `database unreachable and no API key verified in the last ${seconds} s: API keys get UNAVAILABLE${jwtAccepted ? ' (JWTs still accepted)' : ''}`,
      };
    },
  };
}
