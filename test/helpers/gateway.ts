import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { createTestDatabase, testRedisEnv, type TestDatabase } from './services.js';

export interface TestGateway {
  readonly url: string;
  readonly gateway: RunningGateway;
  readonly database: TestDatabase;
  close(): Promise<void>;
}

/**
 * Starts a whole gateway in this process through the real composition root, on a free port, with a
 * fresh database and key prefix. `env` overrides configuration (e.g. NODE_ENV=production).
 */
export async function startTestGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const database = await createTestDatabase();
  const config = loadConfig({ PORT: '0', LOG_LEVEL: 'silent', NODE_ENV: 'test', ...database.env, ...testRedisEnv(), ...env });
  const logger = createLogger({ level: config.log.level, format: 'json' });
  const gateway = await startGateway(config, logger);
  return {
    url: `http://127.0.0.1:${gateway.port}`,
    gateway,
    database,
    async close() {
      await gateway.stop();
      await database.drop();
    },
  };
}
