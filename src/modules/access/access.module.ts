import type { Config } from '../../config/index.js';
import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { EventBus } from '../../infra/pubsub/pubsub.js';
import type { HealthCheck } from '../../shared/health.js';
import type { CloseStep } from '../../shared/lifecycle.js';
import { AuditLog } from '../audit/index.js';
import { apiKeysHealth } from './api-keys.health.js';
import { ApiKeysRepository } from './api-keys.repository.js';
import { ApiKeysService } from './api-keys.service.js';
import { createAuthenticator, type Authenticator } from './authenticator.js';
import { revocationsOver, type Revocations } from './revocations.js';

export interface AccessModuleDeps {
  readonly config: Pick<Config, 'auth'>;
  readonly database: Pick<Database, 'db'>;
  /** Revocations reach every instance's WebSocket connections through it (Redis pub/sub). */
  readonly events: EventBus;
  readonly logger: Logger;
}

export interface AccessModule {
  readonly apiKeys: ApiKeysService;
  readonly authenticator: Authenticator;
  readonly revocations: Revocations;
  readonly health: readonly HealthCheck[];
  readonly closeSteps: readonly CloseStep[];
}

/** Who is calling: API keys (stored hashed, remembered through a database outage), JWTs, roles, revocations. */
export async function createAccessModule({ config, database, events, logger }: AccessModuleDeps): Promise<AccessModule> {
  const revocations = revocationsOver(events, (error) =>
    logger.warn({ err: error }, 'API key revocation announcement failed; open connections re-check on a timer'),
  );
  const accessLogger = logger.child({ component: 'access' });
  const { auth } = config;
  const apiKeys = new ApiKeysService({
    repository: new ApiKeysRepository(database.db),
    audit: new AuditLog(database.db),
    revocations,
    remember: auth.keyMemory,
    onLookupFailed: (error) =>
      accessLogger.warn(
        { err: error, rememberS: auth.keyMemory.ttlMs / 1000 },
        'API key lookups failing: accepting keys verified recently, others get UNAVAILABLE',
      ),
    onLookupRecovered: () => accessLogger.info('API key lookups answer again; remembered keys forgotten, each is checked afresh'),
  });
  // A revocation announced by any instance also drops the key from this one's memory of verified keys.
  const stopForgetting = revocations.listen((principalId) => apiKeys.forget(principalId));
  const closeSteps = [{ name: 'revocations', close: async () => stopForgetting() }];
  const acceptsKeys = auth.mode === 'apikey' || auth.mode === 'apikey+jwt';
  let authenticator: Authenticator;
  try {
    authenticator = await createAuthenticator(auth, apiKeys);
  } catch (error) {
    stopForgetting();
    throw error;
  }
  if (auth.mode === 'off') logger.warn('AUTH_MODE=off: access control is disabled, every caller is an admin (refused in production)');
  return {
    apiKeys,
    authenticator,
    revocations,
    health: acceptsKeys ? [apiKeysHealth(apiKeys, auth.mode === 'apikey+jwt')] : [],
    closeSteps,
  };
}
