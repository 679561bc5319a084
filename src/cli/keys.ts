import { userInfo } from 'node:os';
import { cliConfig, type CliIo, parseCli, runAsCommand } from './args.js';
import { openCliDatabase } from './database-job.js';
import { migrateToLatest } from '../infra/db/index.js';
import { createLogger } from '../infra/logger/logger.js';
import { createRedisEventBus } from '../infra/pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from '../infra/redis/redis.js';
import { ApiKeysRepository, ApiKeysService, isRole, revocationsOver } from '../modules/access/index.js';
import { AuditLog } from '../modules/audit/index.js';

const USAGE = `usage:
  npm run keys -- create --name <name> --role viewer|analyst|admin
  npm run keys -- list
  npm run keys -- revoke <id>`;

/**
 * `npm run keys`: API keys in the configured database (the same one the gateway uses). A created key
 * is printed once, on stdout alone, so `KEY=$(npm run -s keys -- create …)` captures just the key.
 * Every create/revoke is in the audit log with actor `cli:<OS user>`. With the embedded database
 * (PGlite), stop the gateway first: one process per data directory. With REDIS_URL, a revocation is
 * announced to the running instances, which close WebSocket connections using the key at once
 * (without it they find out within WS_CREDENTIAL_RECHECK_MS).
 */
export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli(
    {
      name: 'keys',
      usage: USAGE,
      allowPositionals: true,
      options: { name: { type: 'string' }, role: { type: 'string' } },
    },
    io,
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const { positionals, values } = parsed;
  const [command, ...rest] = positionals;
  if (command !== 'create' && command !== 'list' && command !== 'revoke') {
    io.err(`${USAGE}\n`);
    return 2;
  }
  if (command === 'create' && (!values.name || !isRole(values.role))) {
    io.err(`create needs --name and --role viewer|analyst|admin\n${USAGE}\n`);
    return 2;
  }
  if (command === 'revoke' && rest.length !== 1) {
    io.err(`revoke needs one key id (see list)\n${USAGE}\n`);
    return 2;
  }
  const config = cliConfig(io);
  if (!config) return 1;
  const logger = createLogger({ ...config.log, level: 'warn' });
  const database = await openCliDatabase(config, logger);
  let redis: RedisConnections | undefined;
  try {
    await migrateToLatest(database.db);
    redis = command === 'revoke' && config.redis ? await connectRedis({ url: config.redis.url, logger }) : undefined;
    const revocations = redis
      ? revocationsOver(
          createRedisEventBus({ publisher: redis.publisher, subscriber: redis.subscriber, keyPrefix: config.keyPrefix, logger }),
        )
      : undefined;
    const keys = new ApiKeysService({ repository: new ApiKeysRepository(database.db), audit: new AuditLog(database.db), revocations });
    const actor = `cli:${userInfo().username}`;
    if (command === 'create') {
      const { key, record } = await keys.create({ name: values.name!, role: values.role as 'viewer', actor });
      io.err(`created ${record.role} key "${record.name}" (id ${record.id}); it is shown this once:\n`);
      io.out(`${key}\n`);
    } else if (command === 'list') {
      for (const k of await keys.list()) {
        const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
        io.out(`${k.id}  ${k.role.padEnd(7)}  ${k.prefix}…  ${state.padEnd(32)}  ${k.name}\n`);
      }
    } else {
      const row = await keys.revoke(rest[0]!, actor);
      if (!row) {
        io.err(`no API key with id ${rest[0]}\n`);
        return 1;
      }
      io.out(`revoked ${row.id} (${row.name}); refused from the next request on\n`);
    }
    return 0;
  } catch (error) {
    io.err(`keys ${command} failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await redis?.close(); // QUIT goes after the PUBLISH it queued
    await database.close();
  }
}

await runAsCommand(import.meta.url, 'keys', main);
