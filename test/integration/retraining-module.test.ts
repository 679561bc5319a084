import assert from 'node:assert/strict';
import { existsSync, mkdirSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { createMetrics } from '../../src/infra/metrics/metrics.js';
import { createRetrainingModule, STAGING_DIRECTORY, type RetrainingModuleDeps } from '../../src/modules/retraining/index.js';
import { createTestDatabase, stackName, tempDir, type TestDatabase } from '../helpers/services.js';

/**
 * The retraining module's start-up, on a real database: off without a schedule (but still reporting the
 * recorded runs), an unknown strategy refused, and staging directories a dead run left behind removed
 * while a fresh one (maybe another instance's run in progress) is kept.
 */
describe(`createRetrainingModule (${stackName})`, () => {
  let testDb: TestDatabase;
  let database: Database;
  const models = tempDir('sibyl-retrain-module-');
  const silent = createLogger({ level: 'silent', format: 'json' });

  before(async () => {
    testDb = await createTestDatabase();
    database = await openDatabase(testDb.settings, silent);
    await migrateToLatest(database.db);
  });
  after(async () => {
    await database?.close();
    await testDb?.drop();
    models.remove();
  });

  const deps = (env: Record<string, string>): RetrainingModuleDeps => {
    const unused = () => {
      throw new Error('not used at start-up');
    };
    return {
      config: loadConfig({ MODELS_DIR: models.dir, ...env }),
      database,
      market: { source: 'stored', provider: { fetchBars: unused, listSymbols: unused } },
      registry: { strategies: () => ['direction-1d', 'direction-5d'], verifyDirectory: unused },
      lifecycle: { setShadow: unused },
      metrics: createMetrics(),
      logger: silent,
    };
  };

  test('without RETRAIN_SCHEDULE: no scheduler, no close step, but /metrics reads the recorded runs', async () => {
    const d = deps({});
    const module = await createRetrainingModule(d);
    assert.equal(module.service, undefined);
    assert.equal(module.schedule, undefined);
    assert.deepEqual(module.closeSteps, []);
    assert.deepEqual(await d.metrics.retrainRuns.source!(), []);
  });

  test('an unknown strategy in RETRAIN_STRATEGIES fails start-up, naming it and the known ones', async () => {
    await assert.rejects(
      createRetrainingModule(deps({ RETRAIN_SCHEDULE: '@daily', RETRAIN_STRATEGIES: 'direction-1d,direction-20d' })),
      /RETRAIN_STRATEGIES names unknown strategy direction-20d; known: direction-1d, direction-5d/,
    );
  });

  test('every served strategy by default; a stale staging directory is removed, a fresh one kept', async () => {
    const staging = path.join(models.dir, STAGING_DIRECTORY);
    const stale = path.join(staging, 'direction-1d.r20250101T000000Z.deadbeef');
    const fresh = path.join(staging, 'direction-1d.r20261204T000000Z.cafebabe');
    mkdirSync(path.join(stale, 'direction-1d', 'r20250101T000000Z'), { recursive: true });
    mkdirSync(path.join(fresh, 'direction-1d', 'r20261204T000000Z'), { recursive: true });
    // Older than a claim can live (RETRAIN_TIMEOUT_MS 60 s + a minute).
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(stale, old, old);
    const module = await createRetrainingModule(deps({ RETRAIN_SCHEDULE: '0 0 1 1 *', RETRAIN_TIMEOUT_MS: '60000' }));
    try {
      assert.deepEqual(module.service?.strategies, ['direction-1d', 'direction-5d']);
      assert.ok(module.schedule!.nextRun()! > new Date());
      assert.equal(existsSync(stale), false);
      assert.equal(existsSync(fresh), true);
    } finally {
      for (const step of module.closeSteps) await step.close();
    }
  });
});
