import { loadConfig } from '../../src/config/index.js';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
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
 * fresh database and key prefix. `env` overrides configuration (e.g. NODE_ENV=production); `bars` are
 * stored before start-up, which makes the gateway serve the bars store instead of the synthetic market;
 * `logDestination` receives its JSON log lines.
 */
export async function startTestGateway(
  env: Record<string, string> = {},
  options: { bars?: readonly Bar[]; database?: TestDatabase; logDestination?: { write(line: string): void } } = {},
): Promise<TestGateway> {
  const database = options.database ?? (await createTestDatabase());
  if (options.bars?.length) {
    const direct = await openDatabase(database.settings, createLogger({ level: 'silent', format: 'json' }));
    try {
      await migrateToLatest(direct.db);
      await new BarsRepository(direct.db).upsert(options.bars);
    } finally {
      await direct.close();
    }
  }
  const config = loadConfig({ PORT: '0', LOG_LEVEL: 'silent', NODE_ENV: 'test', ...database.env, ...testRedisEnv(), ...env });
  const logger = createLogger({
    level: config.log.level,
    format: 'json',
    ...(options.logDestination && { destination: options.logDestination }),
  });
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
