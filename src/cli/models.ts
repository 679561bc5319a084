import os from 'node:os';
import path from 'node:path';
import { cliConfig, type CliIo, parseCli, runAsCommand } from './args.js';
import { openCliDatabase } from './database-job.js';
import { redactUrl, type Config } from '../config/index.js';
import { migrateToLatest, type Database } from '../infra/db/index.js';
import { createOnnxEngine } from '../infra/inference/onnx.js';
import { createLogger, type Logger } from '../infra/logger/logger.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from '../infra/pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from '../infra/redis/redis.js';
import {
  ModelLifecycle,
  ModelRegistry,
  ModelServingRepository,
  type ModelVersionEntry,
  type ServingRecord,
} from '../modules/models/index.js';

/**
 * `npm run models -- <command>`: the model lifecycle for operators, against the configured models
 * directory, database and (if REDIS_URL is set) running instances. Changes go through the same code as
 * the `activateModelVersion` mutation: verified from disk first, recorded with an audit row, announced.
 * Exit code: 0 done, 1 refused or failed (a reason is printed) or a bad command, 2 an unknown flag.
 */

const USAGE = `usage: npm run models -- <command>

  list                              versions in MODELS_DIR with their offline metrics, and which one is
                                    active / in shadow (from the database)
  verify [<strategy> [<version>]]   check versions as activation does: manifest, sha256 of model.onnx,
                                    feature set, smoke inference (exit 1 if any is refused)
  activate <strategy> <version>     verify, record as the active version (with an audit row) and tell
                                    running instances (via Redis when REDIS_URL is set; otherwise they
                                    pick it up within MODELS_RESCAN_INTERVAL_MS)
  rollback <strategy>               activate the version the latest activation replaced
  shadow <strategy> <version|none>  run a version in shadow (recorded in history, never served), or stop

The audit log records the actor as cli:<user name>.
`;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'models', usage: USAGE, allowPositionals: true }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const [command, ...rest] = parsed.positionals;
  if (!command) {
    io.err(USAGE);
    return 1;
  }
  const arity: Record<string, [number, number]> = { list: [0, 0], verify: [0, 2], activate: [2, 2], rollback: [1, 1], shadow: [2, 2] };
  const expected = arity[command];
  if (!expected || rest.length < expected[0] || rest.length > expected[1]) {
    io.err(`${expected ? `wrong number of arguments for "${command}"` : `unknown command "${command}"`}\n\n${USAGE}`);
    return 1;
  }
  const config = cliConfig(io);
  if (!config) return 1;
  const logger = createLogger({ ...config.log, level: 'silent' });
  if (command === 'verify') return verify(io, config, logger, rest[0], rest[1]);

  const session = await openSession(config, logger);
  try {
    if (command === 'list') return await list(io, session);
    const actor = `cli:${os.userInfo().username}`;
    const [strategy, version] = rest as [string, string | undefined];
    // Start from what the gateways serve (recording the default for a strategy without a record, as
    // a gateway's first start would).
    await session.lifecycle.sync('cli');
    const before = session.registry.serving(strategy);
    try {
      if (command === 'activate') await session.lifecycle.activate(strategy, version!, actor);
      else if (command === 'rollback') await session.lifecycle.rollback(strategy, actor);
      else await session.lifecycle.setShadow(strategy, version === 'none' ? null : version!, actor);
    } catch (error) {
      io.err(`refused: ${(error as Error).message}\n`);
      return 1;
    }
    const after = session.registry.serving(strategy)!;
    const shadow = (entry: ModelVersionEntry | undefined) => entry?.manifest.version ?? 'none';
    io.out(
      `${strategy}: active ${before?.active.manifest.version ?? 'none'} → ${after.active.manifest.version}, ` +
        `shadow ${shadow(before?.shadow)} → ${shadow(after.shadow)} (recorded by ${actor})\n` +
        (session.redis
          ? `announced to running instances via ${redactUrl(config.redis!.url)}\n`
          : `no REDIS_URL: running instances pick this up within ${config.modelsRescanIntervalMs} ms (MODELS_RESCAN_INTERVAL_MS)\n`),
    );
    return 0;
  } finally {
    await session.close();
  }
}

async function verify(io: CliIo, config: Config, logger: Logger, strategy?: string, version?: string): Promise<number> {
  const registry = await ModelRegistry.load({
    directory: config.modelsDir,
    engine: createOnnxEngine(),
    batching: config.inference,
    logger,
  });
  try {
    io.err(`verifying models in ${config.modelsDir}\n`);
    const results: Array<{ name: string; ok: boolean; detail: string }> = [];
    if (strategy && version) {
      // One version, from disk, exactly as activation checks it.
      try {
        const entry = registry.adopt(await registry.verify(strategy, version));
        results.push({ name: `${strategy}/${version}`, ok: true, detail: describe(entry) });
      } catch (error) {
        results.push({ name: `${strategy}/${version}`, ok: false, detail: (error as Error).message });
      }
    } else {
      for (const name of registry.strategies().filter((s) => !strategy || s === strategy)) {
        for (const entry of registry.versionsOf(name))
          results.push({ name: `${name}/${entry.manifest.version}`, ok: true, detail: describe(entry) });
      }
      for (const refused of registry.refused) {
        const name = path.relative(config.modelsDir, refused.directory);
        if (!strategy || name.startsWith(`${strategy}/`)) results.push({ name, ok: false, detail: refused.reason });
      }
    }
    for (const r of results) io.out(`${r.ok ? 'ok     ' : 'REFUSED'} ${r.name}: ${r.detail}\n`);
    const bad = results.filter((r) => !r.ok).length;
    io.out(`${results.length} version(s) checked, ${results.length - bad} ok, ${bad} refused\n`);
    return bad > 0 || results.length === 0 ? 1 : 0;
  } finally {
    await registry.close();
  }
}

async function list(io: CliIo, session: Session): Promise<number> {
  const { registry, repository, config } = session;
  const records = await repository.all();
  io.out(`models in ${config.modelsDir}\n`);
  for (const strategy of registry.strategies()) {
    const record: ServingRecord | undefined = records.get(strategy);
    io.out(`\n${strategy}${record ? '' : ' (no record yet: the newest version becomes active at the first start)'}\n`);
    for (const entry of registry.versionsOf(strategy)) {
      const { version } = entry.manifest;
      const role = version === record?.activeVersion ? 'ACTIVE' : version === record?.shadowVersion ? 'SHADOW' : '';
      io.out(`  ${role.padEnd(6)} ${version.padEnd(12)} ${describe(entry)}\n`);
    }
    if (record) io.out(`  changed ${record.updatedAt.toISOString()} by ${record.updatedBy}\n`);
  }
  if (registry.refused.length) {
    io.out('\nrefused (not servable):\n');
    for (const r of registry.refused) io.out(`  ${path.relative(config.modelsDir, r.directory)}: ${r.reason}\n`);
  }
  return 0;
}

function describe({ manifest }: ModelVersionEntry): string {
  const m = manifest.offlineMetrics;
  return (
    `created ${manifest.createdAt.slice(0, 10)}, offline (${m.period.from}..${m.period.to}, n=${m.sampleSize}): ` +
    `accuracy ${m.accuracy.toFixed(3)} vs base ${m.baselineAccuracy.toFixed(3)}, brier ${m.brier.toFixed(4)} vs ${m.baselineBrier.toFixed(4)}`
  );
}

interface Session {
  readonly config: Config;
  readonly registry: ModelRegistry;
  readonly repository: ModelServingRepository;
  readonly lifecycle: ModelLifecycle;
  readonly redis: RedisConnections | undefined;
  close(): Promise<void>;
}

async function openSession(config: Config, logger: Logger): Promise<Session> {
  const database: Database = await openCliDatabase(config, logger);
  const closers: Array<() => Promise<void>> = [() => database.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    await migrateToLatest(database.db);
    const redis = config.redis ? await connectRedis({ url: config.redis.url, logger }) : undefined;
    if (redis) closers.push(() => redis.close());
    const events: EventBus = redis
      ? createRedisEventBus({ publisher: redis.publisher, subscriber: redis.subscriber, keyPrefix: config.keyPrefix })
      : createMemoryEventBus({ keyPrefix: config.keyPrefix });
    const registry = await ModelRegistry.load({
      directory: config.modelsDir,
      engine: createOnnxEngine(),
      batching: config.inference,
      logger,
    });
    closers.push(() => registry.close());
    const repository = new ModelServingRepository(database.db);
    const lifecycle = new ModelLifecycle({ registry, repository, events, logger, rescanIntervalMs: 0 });
    closers.push(() => lifecycle.close());
    return { config, registry, repository, lifecycle, redis, close };
  } catch (error) {
    await close();
    throw error;
  }
}

await runAsCommand(import.meta.url, 'models', main);
