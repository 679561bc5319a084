import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import {
  ActivateModelVersionDocument,
  RollbackModelVersionDocument,
  ServedVersionsDocument,
  SetShadowModelVersionDocument,
  StrategyVersionsDocument,
  type StrategyServingFragment,
} from '../generated/graphql.js';
import { execute } from '../helpers/graphql.js';
import { corruptModelFile, eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { createTestDatabase, realPostgresUrl, realRedisUrl, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

const S = 'direction-1d';
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'JPM'];

interface Instance {
  url: string;
  gateway: RunningGateway;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** A whole gateway through the real composition root, with its log lines captured. */
async function start(env: Record<string, string>, database: TestDatabase): Promise<Instance> {
  const logs: Array<Record<string, unknown>> = [];
  const config = loadConfig({ PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'info', ...database.env, ...testRedisEnv(), ...env });
  const logger = createLogger({
    level: 'info',
    format: 'json',
    destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
  });
  const gateway = await startGateway(config, logger);
  return { url: `http://127.0.0.1:${gateway.port}`, gateway, logs, stop: () => gateway.stop() };
}

const strategyOf = async (url: string, name = S): Promise<StrategyServingFragment> => {
  const { data, errors } = await execute(url, StrategyVersionsDocument);
  assert.equal(errors, undefined);
  return data!.strategies.find((s) => s.name === name)!;
};

/**
 * The model lifecycle through the API of a running gateway: versions dropped in are picked up and never
 * served by themselves; activation and rollback under continuous load fail nothing and every response
 * says which version made it; broken versions are refused at start-up and at activation while the
 * service stays ready; shadow predictions reach history and never a response.
 */
describe(`model lifecycle through the API (${stackName})`, () => {
  let fixture: ModelsFixture;
  let database: TestDatabase;
  let server: Instance;

  before(async () => {
    fixture = await modelsFixture();
    // Broken from the start: refused at start-up with a log line, and the service is ready anyway.
    await fixture.addVersion(S, 'v0broken', { damage: corruptModelFile });
    database = await createTestDatabase();
    server = await start(
      { MODELS_DIR: fixture.dir, MODELS_RESCAN_INTERVAL_MS: '100', SYNTHETIC_TICK_MS: '0', HISTORY_FLUSH_INTERVAL_MS: '20' },
      database,
    );
  });
  after(async () => {
    await server?.stop();
    await database?.drop();
    fixture?.remove();
  });

  test('a corrupted model file is refused at start-up with a clear log, and the service is ready', async () => {
    const refused = server.logs.find((l) => String(l.msg).startsWith('model refused') && String(l.directory).endsWith('v0broken'));
    assert.ok(refused, 'a "model refused" line names the directory');
    assert.equal(refused.level, 50);
    assert.match(String(refused.reason), /^model\.onnx has sha256 .* \(corrupt or replaced file\)$/);
    const ready = await fetch(`${server.url}/health/ready`);
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { components: Array<{ name: string; status: string; detail: string }> };
    const models = body.components.find((c) => c.name === 'models')!;
    assert.equal(models.status, 'degraded');
    assert.match(models.detail, /serving direction-1d@v1, direction-5d@v1; refused 1: .*v0broken: model\.onnx has sha256/);
    const strategy = await strategyOf(server.url);
    assert.equal(strategy.activeVersion.version, 'v1');
    assert.deepEqual(
      strategy.versions.map((v) => v.version),
      ['v1'],
    );
  });

  test('a version dropped into the models directory is listed without a restart, and not activated', async () => {
    await fixture.addVersion(S, 'v2', { createdAt: '2031-01-01T00:00:00.000Z', calibrationShift: 0.6 });
    const strategy = await eventually('v2 to be listed', async () => {
      const s = await strategyOf(server.url);
      return s.versions.some((v) => v.version === 'v2') ? s : undefined;
    });
    assert.equal(strategy.activeVersion.version, 'v1', 'newer, but never activated by itself');
    const v2 = strategy.versions.find((v) => v.version === 'v2')!;
    assert.equal(v2.active, false);
    assert.equal(v2.offlineMetrics?.source, 'offline', "listed with its manifest's offline metrics");
    assert.ok(v2.offlineMetrics!.sampleSize > 0);
  });

  test('under continuous load, activation and rollback fail no request, and every response names the version that made it', async () => {
    interface Served {
      startedAt: number;
      endedAt: number;
      versions: string[];
      probabilities: Map<string, number>;
    }
    const served: Served[] = [];
    const failures: unknown[] = [];
    let running = true;
    const loop = async () => {
      while (running) {
        const startedAt = performance.now();
        try {
          const { status, data, errors } = await execute(server.url, ServedVersionsDocument, { symbols: SYMBOLS, strategy: S });
          if (status !== 200 || errors || !data) failures.push({ status, errors });
          else {
            served.push({
              startedAt,
              endedAt: performance.now(),
              versions: data.predictions.map((p) => p!.model.version),
              probabilities: new Map(data.predictions.map((p) => [p!.symbol, p!.probability])),
            });
          }
        } catch (error) {
          failures.push({ error: String(error), cause: String((error as Error).cause) });
        }
      }
    };
    const loops = [loop(), loop()];
    const waitForResponses = (n: number) => eventually(`${n} responses`, () => (served.length >= n ? true : undefined), 60_000, 10);

    await waitForResponses(10);
    const activationSentAt = performance.now();
    const activated = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version: 'v2' });
    assert.equal(activated.errors, undefined);
    assert.equal(activated.data!.activateModelVersion.activeVersion.version, 'v2');
    const activatedAt = performance.now();
    await waitForResponses(served.length + 20);

    const rollbackSentAt = performance.now();
    const rolledBack = await execute(server.url, RollbackModelVersionDocument, { strategy: S });
    assert.equal(rolledBack.errors, undefined);
    assert.equal(rolledBack.data!.rollbackModelVersion.activeVersion.version, 'v1');
    const rolledBackAt = performance.now();
    await waitForResponses(served.length + 20);
    running = false;
    await Promise.all(loops);

    assert.deepEqual(failures, [], 'no request failed');
    // One batch, one version: a response never mixes versions.
    for (const response of served)
      assert.equal(new Set(response.versions).size, 1, `mixed versions in one response: ${response.versions.join(', ')}`);
    // Each version gives the same probabilities every time (the market is frozen), and they differ
    // between versions: the version named is the one that computed the numbers.
    const byVersion = new Map<string, Map<string, number>>();
    for (const response of served) {
      const version = response.versions[0]!;
      const seen = byVersion.get(version);
      if (!seen) byVersion.set(version, response.probabilities);
      else for (const [symbol, p] of response.probabilities) assert.equal(p, seen.get(symbol), `${version} ${symbol}`);
    }
    assert.deepEqual([...byVersion.keys()].sort(), ['v1', 'v2']);
    for (const symbol of SYMBOLS) assert.notEqual(byVersion.get('v1')!.get(symbol), byVersion.get('v2')!.get(symbol));
    // Requests made entirely between the activation's answer and the rollback's request were served by
    // v2; requests started after the rollback answered, by v1. (Ones overlapping a switch may be either.)
    const version = (r: Served) => r.versions[0];
    const betweenSwitches = served.filter((r) => r.startedAt > activatedAt && r.endedAt < rollbackSentAt);
    assert.ok(betweenSwitches.length >= 5, `${betweenSwitches.length} requests between the switches`);
    assert.deepEqual(new Set(betweenSwitches.map(version)), new Set(['v2']));
    assert.deepEqual(new Set(served.filter((r) => r.startedAt > rolledBackAt).map(version)), new Set(['v1']));
    assert.deepEqual(new Set(served.filter((r) => r.endedAt < activationSentAt).map(version)), new Set(['v1']));

    // The actor is the caller's principal id: tests run with AUTH_MODE=off, whose principal is `dev`.
    const audit = await server.gateway.database.db
      .selectFrom('audit_log')
      .select(['actor', 'action', 'subject', 'detail'])
      .where('action', '=', 'model.activate')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      audit.map((a) => [a.actor, a.subject, a.detail.version, a.detail.previous]),
      [
        ['dev', S, 'v2', 'v1'],
        ['dev', S, 'v1', 'v2'],
      ],
    );
  });

  test('activating a corrupted version is refused with BAD_USER_INPUT and the current version keeps serving; the service stays ready', async () => {
    for (const [version, reason] of [
      ['v0broken', /model\.onnx has sha256/],
      ['v404', /no version "v404"/],
    ] as const) {
      const { data, errors } = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version });
      assert.equal(data, null);
      assert.equal(errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
      assert.match(errors![0]!.message, reason);
      assert.match(errors![0]!.message, /direction-1d@v1 keeps serving$/);
    }
    // v2 was fine when loaded; its file is damaged now: activation verifies the files again and refuses.
    await corruptModelFile(`${fixture.dir}/${S}/v2`);
    const { errors } = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version: 'v2' });
    assert.equal(errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(
      errors![0]!.message,
      /^cannot activate direction-1d@v2: model\.onnx has sha256 .* \(corrupt or replaced file\); direction-1d@v1 keeps serving$/,
    );
    assert.ok(
      server.logs.some((l) => l.level === 40 && String(l.msg).startsWith('refused to activate direction-1d@v2')),
      'the refusal is logged',
    );

    const { data } = await execute(server.url, ServedVersionsDocument, { symbols: SYMBOLS, strategy: S });
    assert.deepEqual(new Set(data!.predictions.map((p) => p!.model.version)), new Set(['v1']));
    assert.equal((await fetch(`${server.url}/health/ready`)).status, 200);

    const bad = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version: '../v1' });
    assert.equal(bad.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    const unknown = await execute(server.url, ActivateModelVersionDocument, { strategy: 'direction-9d', version: 'v1' });
    assert.equal(unknown.errors?.[0]?.extensions?.code, 'UNKNOWN_STRATEGY');
  });

  test('shadow predictions are recorded in history under the shadow version and never served', async () => {
    await fixture.addVersion(S, 'v3', { createdAt: '2032-01-01T00:00:00.000Z', calibrationShift: -0.6 });
    await eventually('v3 to be listed', async () =>
      (await strategyOf(server.url)).versions.some((v) => v.version === 'v3') ? true : undefined,
    );
    const set = await execute(server.url, SetShadowModelVersionDocument, { strategy: S, version: 'v3' });
    assert.equal(set.errors, undefined);
    assert.equal(set.data!.setShadowModelVersion.shadowVersion?.version, 'v3');
    assert.equal(set.data!.setShadowModelVersion.activeVersion.version, 'v1');
    assert.deepEqual(
      set.data!.setShadowModelVersion.versions.filter((v) => v.shadow).map((v) => v.version),
      ['v3'],
    );

    const symbols = ['TSLA', 'XOM', 'JNJ'];
    for (let i = 0; i < 3; i++) {
      const { data, errors } = await execute(server.url, ServedVersionsDocument, { symbols, strategy: S });
      assert.equal(errors, undefined);
      assert.deepEqual(
        new Set(data!.predictions.map((p) => p!.model.version)),
        new Set(['v1']),
        'responses come from the active version only',
      );
    }
    const db = server.gateway.database.db;
    const rows = await eventually('shadow rows in history', async () => {
      const found = await db
        .selectFrom('prediction_history')
        .select(['symbol', 'model_version', 'time', 'probability', 'features_hash'])
        .where('strategy', '=', S)
        .where('symbol', 'in', symbols)
        .execute();
      return found.filter((r) => r.model_version === 'v3').length === symbols.length &&
        found.filter((r) => r.model_version === 'v1').length === symbols.length
        ? found
        : undefined;
    });
    for (const symbol of symbols) {
      const served = rows.find((r) => r.symbol === symbol && r.model_version === 'v1')!;
      const shadow = rows.find((r) => r.symbol === symbol && r.model_version === 'v3')!;
      // Same batch, same inputs: the same bar and feature vector, a different model's probability.
      assert.equal(shadow.time.getTime(), served.time.getTime());
      assert.equal(shadow.features_hash, served.features_hash);
      assert.notEqual(shadow.probability, served.probability);
    }

    const cleared = await execute(server.url, SetShadowModelVersionDocument, { strategy: S, version: null });
    assert.equal(cleared.data!.setShadowModelVersion.shadowVersion, null);
    const shadowAudit = await db
      .selectFrom('audit_log')
      .select(['actor', 'detail'])
      .where('action', '=', 'model.shadow')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      shadowAudit.map((a) => [a.actor, a.detail.version]),
      [
        ['dev', 'v3'],
        ['dev', null],
      ],
    );
  });
});

describe(
  `model lifecycle across instances (${stackName})`,
  { skip: !(realPostgresUrl && realRedisUrl) && 'needs DATABASE_URL and REDIS_URL (two instances share one database and one Redis)' },
  () => {
    let fixture: ModelsFixture;
    let database: TestDatabase;
    const instances: Instance[] = [];

    before(async () => {
      fixture = await modelsFixture([S]);
      await fixture.addVersion(S, 'v2', { createdAt: '2001-01-01T00:00:00.000Z', calibrationShift: 0.5 });
      database = await createTestDatabase();
    });
    after(async () => {
      for (const instance of instances) await instance.stop();
      await database?.drop();
      fixture?.remove();
    });

    test('activation on A switches B within seconds (by event: B never rescans), and a later instance starts on the recorded version', async (t) => {
      const shared = { MODELS_DIR: fixture.dir, SYNTHETIC_TICK_MS: '0', REDIS_KEY_PREFIX: testRedisEnv().REDIS_KEY_PREFIX! };
      const a = await start({ ...shared, MODELS_RESCAN_INTERVAL_MS: '0' }, database);
      instances.push(a);
      const b = await start({ ...shared, MODELS_RESCAN_INTERVAL_MS: '0' }, database);
      instances.push(b);
      assert.equal((await strategyOf(b.url)).activeVersion.version, 'v1');

      const activated = await execute(a.url, ActivateModelVersionDocument, { strategy: S, version: 'v2' });
      assert.equal(activated.errors, undefined);
      const switchedAt = performance.now();
      await eventually(
        'B to serve v2',
        async () => {
          const { data } = await execute(b.url, ServedVersionsDocument, { symbols: ['AAPL'], strategy: S });
          return data?.predictions[0]?.model.version === 'v2' ? true : undefined;
        },
        5_000,
        20,
      );
      const seconds = (performance.now() - switchedAt) / 1000;
      t.diagnostic(`B served v2 ${seconds.toFixed(3)} s after A's activation answered`);
      assert.ok(seconds < 5, `B switched after ${seconds.toFixed(2)} s`);
      assert.ok(
        b.logs.some((l) => String(l.msg).startsWith('direction-1d now served by v2') && String(l.reason).startsWith('event from dev')),
      );

      const c = await start({ ...shared, MODELS_RESCAN_INTERVAL_MS: '0' }, database);
      instances.push(c);
      assert.equal((await strategyOf(c.url)).activeVersion.version, 'v2', 'a new instance starts on the recorded version, not the newest');
    });
  },
);
