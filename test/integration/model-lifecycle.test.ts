import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GraphQLError } from 'graphql';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createOnnxEngine } from '../../src/infra/inference/onnx.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createMemoryEventBus, createRedisEventBus, type EventBus } from '../../src/infra/pubsub/pubsub.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis/redis.js';
import { ModelLifecycle, ModelRegistry, ModelServingRepository } from '../../src/modules/models/index.js';
import { corruptModelFile, editManifest, eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { createTestDatabase, realRedisUrl, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

const S = 'direction-1d';
const logger = createLogger({ level: 'silent', format: 'json' });

/**
 * The lifecycle against a real database (PGlite or PostgreSQL) and the configured event bus: the record
 * every instance follows, its audit trail, refusals that change nothing, rollback and shadow, and
 * instances that switch by event or, having missed it, by re-reading the record.
 */
describe(`ModelLifecycle (${stackName})`, () => {
  let testDb: TestDatabase;
  let database: Database;
  let fixture: ModelsFixture;
  const keyPrefix = testRedisEnv().REDIS_KEY_PREFIX!;
  const cleanups: Array<() => Promise<void>> = [];
  /** One bus shared by the "instances" in memory; with Redis, each instance has its own connections. */
  const sharedMemoryBus = createMemoryEventBus({ keyPrefix });

  before(async () => {
    testDb = await createTestDatabase();
    database = await openDatabase(testDb.settings, logger);
    await migrateToLatest(database.db);
    fixture = await modelsFixture([S]);
    await fixture.addVersion(S, 'v0', { createdAt: '2001-01-01T00:00:00.000Z', calibrationShift: -0.4 });
    await fixture.addVersion(S, 'v2', { createdAt: '2002-01-01T00:00:00.000Z', calibrationShift: 0.4 });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await database.close();
    await testDb.drop();
    fixture.remove();
  });

  async function bus(): Promise<EventBus> {
    if (!realRedisUrl) return sharedMemoryBus;
    const redis: RedisConnections = await connectRedis({ url: realRedisUrl, logger });
    cleanups.push(() => redis.close());
    return createRedisEventBus({ publisher: redis.publisher, subscriber: redis.subscriber, keyPrefix });
  }

  async function instance(options: { events?: EventBus; rescanIntervalMs?: number } = {}) {
    const registry = await ModelRegistry.load({
      directory: fixture.dir,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger,
    });
    const lifecycle = new ModelLifecycle({
      registry,
      repository: new ModelServingRepository(database.db),
      events: options.events ?? (await bus()),
      logger,
      rescanIntervalMs: options.rescanIntervalMs ?? 0,
    });
    await lifecycle.start();
    cleanups.push(async () => {
      await lifecycle.close();
      await registry.close();
    });
    return { registry, lifecycle, version: () => registry.active(S)!.manifest.version, shadow: () => registry.shadow(S)?.manifest.version };
  }

  const repository = () => new ModelServingRepository(database.db);
  const code = (error: unknown) => (error as GraphQLError).extensions?.code;

  let a: Awaited<ReturnType<typeof instance>>;
  let b: Awaited<ReturnType<typeof instance>>;

  test('first start records the newest version as active, once, with an audit row by "system"', async () => {
    a = await instance();
    b = await instance();
    assert.equal(a.version(), 'v1', 'v1 (2020s) is newer than v0 and v2 (2000s)');
    assert.equal(b.version(), 'v1');
    const record = await repository().find(S);
    assert.equal(record?.activeVersion, 'v1');
    assert.equal(record?.shadowVersion, null);
    const trail = await repository().history(S);
    assert.deepEqual(
      trail.map((t) => [t.action, t.actor, t.detail.version]),
      [['model.default', 'system', 'v1']],
    );
  });

  test('activate: the record, an audit row naming the actor, this instance at once, the other by event', async () => {
    const serving = await a.lifecycle.activate(S, 'v2', 'alice');
    assert.equal(serving.active.manifest.version, 'v2');
    assert.equal(a.version(), 'v2', 'the activating instance has switched when the call returns');
    assert.equal((await repository().find(S))?.activeVersion, 'v2');
    const [latest] = await repository().history(S, 1);
    assert.equal(latest!.action, 'model.activate');
    assert.equal(latest!.actor, 'alice');
    assert.deepEqual(latest!.detail, { version: 'v2', previous: 'v1', shadow: null });
    assert.ok(latest!.time instanceof Date && Date.now() - latest!.time.getTime() < 60_000);
    await eventually('the other instance to switch by event', () => (b.version() === 'v2' ? true : undefined), 5_000);
  });

  test('a broken version is refused with BAD_USER_INPUT and its reason; nothing is written and nothing switches', async () => {
    await fixture.addVersion(S, 'v3', { damage: corruptModelFile });
    const auditBefore = (await repository().history(S)).length;
    const error = await a.lifecycle.activate(S, 'v3', 'alice').catch((e: unknown) => e);
    assert.equal(code(error), 'BAD_USER_INPUT');
    assert.match(
      (error as Error).message,
      /^cannot activate direction-1d@v3: model\.onnx has sha256 .*\(corrupt or replaced file\); direction-1d@v2 keeps serving$/,
    );
    assert.match(String((error as GraphQLError).extensions.reason), /sha256/);
    const missing = await a.lifecycle.activate(S, 'v9', 'alice').catch((e: unknown) => e);
    assert.equal(code(missing), 'BAD_USER_INPUT');
    assert.match((missing as Error).message, /no version "v9" of direction-1d/);
    assert.equal(code(await a.lifecycle.activate('direction-9d', 'v1', 'alice').catch((e: unknown) => e)), 'UNKNOWN_STRATEGY');
    assert.equal(a.version(), 'v2');
    assert.equal((await repository().find(S))?.activeVersion, 'v2');
    assert.equal((await repository().history(S)).length, auditBefore, 'no audit row for a refusal');
  });

  test('a version with absurd calibration (issue 17) is refused at activation, saying why; nothing is written', async () => {
    // Dropped in after start-up, as an operator would: the rescan refuses it too, and activation
    // re-verifies from disk rather than trusting anything loaded.
    await fixture.addVersion(S, 'v4', { damage: (dir) => editManifest(dir, (m) => Object.assign(m.calibration, { a: 1e308, b: -1e308 })) });
    const auditBefore = (await repository().history(S)).length;
    const error = await a.lifecycle.activate(S, 'v4', 'alice').catch((e: unknown) => e);
    assert.equal(code(error), 'BAD_USER_INPUT');
    assert.match(
      (error as Error).message,
      /^cannot activate direction-1d@v4: manifest\.json is invalid: calibration\.a: Too big: expected number to be <=20; calibration\.b: Too small: expected number to be >=-20; direction-1d@v2 keeps serving$/,
    );
    assert.match(String((error as GraphQLError).extensions.reason), /calibration\.a/);
    const shadow = await a.lifecycle.setShadow(S, 'v4', 'alice').catch((e: unknown) => e);
    assert.equal(code(shadow), 'BAD_USER_INPUT');
    assert.equal(a.version(), 'v2');
    assert.equal((await repository().find(S))?.activeVersion, 'v2');
    assert.equal((await repository().history(S)).length, auditBefore, 'no audit row for a refusal');
    const { refused } = await a.registry.rescan();
    assert.ok(
      refused.some((r) => r.directory.endsWith('v4') && /calibration\.a/.test(r.reason)),
      JSON.stringify(refused),
    );
  });

  test('rollback activates the version the latest activation replaced', async () => {
    await a.lifecycle.rollback(S, 'bob');
    assert.equal(a.version(), 'v1');
    const [latest] = await repository().history(S, 1);
    assert.deepEqual([latest!.actor, latest!.detail.version, latest!.detail.previous], ['bob', 'v1', 'v2']);
    await eventually('the other instance to roll back', () => (b.version() === 'v1' ? true : undefined), 5_000);
  });

  test('shadow: recorded with the active version, applied everywhere, refused when it is the active one, cleared by promotion', async () => {
    await a.lifecycle.setShadow(S, 'v2', 'carol');
    assert.equal(a.shadow(), 'v2');
    assert.equal((await repository().find(S))?.shadowVersion, 'v2');
    await eventually('the other instance to run the shadow', () => (b.shadow() === 'v2' ? true : undefined), 5_000);
    assert.equal(code(await a.lifecycle.setShadow(S, 'v1', 'carol').catch((e: unknown) => e)), 'BAD_USER_INPUT');
    assert.equal(code(await a.lifecycle.setShadow(S, 'v3', 'carol').catch((e: unknown) => e)), 'BAD_USER_INPUT');
    assert.equal(a.shadow(), 'v2');

    // Activating the shadow promotes it: it serves, and nothing runs in shadow any more.
    await a.lifecycle.activate(S, 'v2', 'carol');
    assert.equal(a.version(), 'v2');
    assert.equal(a.shadow(), undefined);
    const [latest] = await repository().history(S, 1);
    assert.deepEqual(latest!.detail, { version: 'v2', previous: 'v1', shadow: null, promotedShadow: true });
    await eventually(
      'the other instance to follow the promotion',
      () => (b.version() === 'v2' && b.shadow() === undefined ? true : undefined),
      5_000,
    );

    await a.lifecycle.setShadow(S, 'v0', 'carol');
    await a.lifecycle.setShadow(S, null, 'carol');
    assert.equal(a.shadow(), undefined);
    assert.equal((await repository().find(S))?.shadowVersion, null);
  });

  test('an instance that missed the event catches up by re-reading the record (on its rescan tick)', async () => {
    // Its own private bus: no event can reach it.
    const deaf = await instance({ events: createMemoryEventBus({ keyPrefix: 'deaf:' }), rescanIntervalMs: 100 });
    assert.equal(deaf.version(), 'v2', 'start reads the record');
    await a.lifecycle.activate(S, 'v0', 'dave');
    await eventually('the deaf instance to catch up', () => (deaf.version() === 'v0' ? true : undefined), 5_000);
  });

  test('a recorded version this instance cannot load: it keeps serving what it has and says why', async () => {
    // Written behind the gateway's back, as a damaged deployment would look.
    await repository().activate({ strategy: S, version: 'v3', actor: 'eve' });
    const c = await instance();
    assert.equal(c.version(), 'v1', 'falls back to the default (newest) rather than serving nothing');
    assert.match(c.lifecycle.problems().get(S) ?? '', /recorded active version v3 cannot be served here \(model\.onnx has sha256/);
    await a.lifecycle.activate(S, 'v1', 'eve');
    await eventually(
      'the problem to clear once the record is servable',
      () => (c.lifecycle.problems().size === 0 && c.version() === 'v1' ? true : undefined),
      5_000,
    );
  });
});
