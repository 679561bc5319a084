import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createMetrics } from '../../src/infra/metrics/metrics.js';
import { findStrategy } from '../../src/domain/strategies.js';
import { RetrainingService, RetrainRunsRepository, STAGING_DIRECTORY, type RetrainRun } from '../../src/modules/retraining/index.js';
import { PredictionDocument, StrategyVersionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { marketDataMissing } from '../helpers/market-source.js';
import { metricValue } from '../helpers/metrics.js';
import { eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { alive, databaseWithBars, fireIn, realBars } from '../helpers/retraining.js';
import { realPostgresUrl, realRedisUrl, stackName, type TestDatabase } from '../helpers/services.js';

/**
 * Scheduled retraining through whole gateways on real bars (../shared/data/market, imported into the
 * test's database), with a schedule that fires once, a few seconds after start (6-field cron, UTC). Each
 * gateway trains for real in a child process; the claims, the audit rows and the models directory are
 * read back from where they live.
 */
const D1 = 'direction-1d';
const D5 = 'direction-5d';
const QUIET = { SYNTHETIC_TICK_MS: '0', OUTCOMES_INTERVAL_MS: '0', SIGNALS_INTERVAL_MS: '0', HISTORY_FLUSH_INTERVAL_MS: '50' };
const silent = createLogger({ level: 'silent', format: 'json' });
const missing = marketDataMissing();
if (missing && process.env.CI) throw new Error(missing);

/** Three real symbols from 2009 on (~9,300 bars): enough for three-year validation and held-out periods. */
const THREE = ['AAPL', 'JPM', 'XOM'];
const THREE_FROM = '2009-01-01';

/** The next weekday after today (UTC): a bar the bar rules accept but no session has completed. */
function nextWeekday(): Date {
  const day = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
  do day.setUTCDate(day.getUTCDate() + 1);
  while (day.getUTCDay() === 0 || day.getUTCDay() === 6);
  return day;
}

async function finishedRun(runs: RetrainRunsRepository, strategy: string, scheduledFor: Date, timeoutMs = 120_000): Promise<RetrainRun> {
  return eventually(
    `the ${strategy} run of ${scheduledFor.toISOString()} to finish`,
    async () => (await runs.recent(strategy)).find((r) => r.scheduledFor.getTime() === scheduledFor.getTime() && r.status !== 'running'),
    timeoutMs,
    200,
  );
}

async function auditOf(server: TestGateway, subject: string) {
  return server.gateway.database.db
    .selectFrom('audit_log')
    .select(['actor', 'action', 'detail'])
    .where('subject', '=', subject)
    .orderBy('id')
    .execute();
}

async function strategies(url: string) {
  const { data, errors } = await execute(url, StrategyVersionsDocument);
  assert.equal(errors, undefined, JSON.stringify(errors));
  return new Map(data!.strategies.map((s) => [s.name, s]));
}

const versionsOnDisk = (fixture: ModelsFixture, strategy: string) => readdirSync(path.join(fixture.dir, strategy)).sort();
const staged = (fixture: ModelsFixture) =>
  existsSync(path.join(fixture.dir, STAGING_DIRECTORY)) ? readdirSync(path.join(fixture.dir, STAGING_DIRECTORY)) : [];

describe(`scheduled retraining (${stackName})`, { skip: missing }, () => {
  describe('a tick trains a candidate on the stored bars and registers it as shadow; a strategy whose run goes on elsewhere is skipped', () => {
    let fixture: ModelsFixture;
    let server: TestGateway;
    let bars: Bar[];
    let tick: Date;
    let run: RetrainRun;
    const future = nextWeekday();

    before(async () => {
      fixture = await modelsFixture();
      bars = await realBars(THREE, THREE_FROM);
      const last = bars.filter((b) => b.symbol === 'AAPL').at(-1)!;
      // Stored but after the last complete session: the training must not see it.
      const database = await databaseWithBars([...bars, { ...last, time: future }]);
      // Another instance is training direction-5d (its claim is fresh): this instance must skip it.
      const direct = await openDatabase(database.settings, silent);
      const held = await new RetrainRunsRepository(direct.db).claim({
        strategy: D5,
        scheduledFor: new Date('2026-01-01T00:00:00Z'),
        instance: 'another-instance',
        ttlMs: 3_600_000,
        version: 'r20260101T000000Z',
      });
      assert.ok(held.claimed);
      await direct.close();
      const schedule = fireIn(4);
      tick = schedule.at;
      server = await startTestGateway(
        { ...QUIET, MODELS_DIR: fixture.dir, ...schedule.env, RETRAIN_STRATEGIES: `${D1},${D5}` },
        { database },
      );
      run = await finishedRun(server.gateway.retraining.runs, D1, tick);
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    const version = () =>
      `r${tick
        .toISOString()
        .replace(/\.000Z$/, 'Z')
        .replaceAll('-', '')
        .replaceAll(':', '')}`;

    test('the run succeeded on this instance and wrote one whole version into MODELS_DIR, nothing left staged', async () => {
      assert.equal(run.status, 'succeeded', JSON.stringify(run.detail));
      assert.equal(run.version, version());
      assert.deepEqual(versionsOnDisk(fixture, D1), [version(), 'v1']);
      assert.deepEqual(readdirSync(path.join(fixture.dir, D1, version())).sort(), ['manifest.json', 'model.onnx']);
      assert.deepEqual(staged(fixture), []);
    });

    test('it trained on the stored bars up to the last complete session: the bar dated after it is not in the data', () => {
      const manifest = JSON.parse(readFileSync(path.join(fixture.dir, D1, version(), 'manifest.json'), 'utf8'));
      assert.equal(manifest.data.to, '2021-04-21');
      assert.equal(manifest.data.bars, bars.length, 'every stored bar but the future one');
      assert.deepEqual(manifest.data.symbols, THREE);
      assert.match(manifest.data.source, /^bars store \((pglite|postgres)\), 3 symbols up to the session of \d{4}-\d{2}-\d{2}$/);
      // Rolling periods: three years held out, three validated, ending at the last bar.
      assert.equal(manifest.offlineMetrics.period.from, '2018-04-21');
      assert.equal(manifest.training.validation.from >= '2015-04-21', true);
      assert.equal(manifest.createdAt >= tick.toISOString(), true);
    });

    test('strategies shows it as the shadow of direction-1d, with its held-out metrics; direction-5d is unchanged', async () => {
      const served = await strategies(server.url);
      const d1 = served.get(D1)!;
      assert.equal(d1.activeVersion.version, 'v1');
      assert.deepEqual(d1.shadowVersion, { version: version(), shadow: true });
      const manifest = JSON.parse(readFileSync(path.join(fixture.dir, D1, version(), 'manifest.json'), 'utf8'));
      const listed = d1.versions.find((v) => v.version === version())!;
      assert.equal(listed.offlineMetrics?.sampleSize, manifest.offlineMetrics.sampleSize);
      assert.equal(listed.offlineMetrics?.accuracy, manifest.offlineMetrics.accuracy);
      assert.equal(served.get(D5)!.shadowVersion, null);
    });

    test('audited as the scheduler: the shadow change and the run with its held-out figures, equal to the manifest', async () => {
      const manifest = JSON.parse(readFileSync(path.join(fixture.dir, D1, version(), 'manifest.json'), 'utf8'));
      const rows = (await auditOf(server, D1)).filter((r) => r.actor === 'scheduler');
      assert.deepEqual(
        rows.map((r) => r.action),
        ['model.shadow', 'model.retrained'],
      );
      assert.equal(rows[0]!.detail.version, version());
      const detail = rows[1]!.detail as Record<string, any>;
      assert.equal(detail.version, version());
      assert.equal(detail.scheduledFor, tick.toISOString());
      assert.equal(detail.family, 'logistic');
      assert.equal(detail.sha256, manifest.sha256);
      const m = manifest.offlineMetrics;
      assert.deepEqual(
        [
          detail.heldOut.samples,
          detail.heldOut.brier,
          detail.heldOut.baselineBrier,
          detail.heldOut.accuracy,
          detail.heldOut.intervalCoverage95,
        ],
        [m.sampleSize, m.brier, m.baselineBrier, m.accuracy, m.intervalCoverage['0.95']],
      );
      assert.equal(detail.heldOut.bootstrapVerdict, m.estimation.verdict);
      assert.deepEqual(detail.data, {
        source: manifest.data.source,
        symbols: 3,
        bars: bars.length,
        from: manifest.data.from,
        to: '2021-04-21',
      });
    });

    test('direction-5d was skipped (a fresh claim of another instance): no row for this tick, counted as skipped', async () => {
      const runs = await server.gateway.retraining.runs.recent(D5);
      assert.deepEqual(
        runs.map((r) => [r.instance, r.status]),
        [['another-instance', 'running']],
      );
      assert.deepEqual(versionsOnDisk(fixture, D5), ['v1']);
      assert.equal(await metricValue(server.url, `sibyl_retrain_runs_total{strategy="${D5}",result="skipped"}`), 1);
      assert.equal((await auditOf(server, D5)).filter((r) => r.actor === 'scheduler').length, 0);
    });

    test('/metrics: the run counted, timed and timestamped, nothing in progress', async () => {
      const url = server.url;
      assert.equal(await metricValue(url, `sibyl_retrain_runs_total{strategy="${D1}",result="succeeded"}`), 1);
      assert.equal(await metricValue(url, `sibyl_retrain_seconds_count{strategy="${D1}",result="succeeded"}`), 1);
      assert.equal(await metricValue(url, `sibyl_retrain_in_progress{strategy="${D1}"}`), 0);
      const stamp = await metricValue(url, `sibyl_retrain_last_run_timestamp_seconds{strategy="${D1}",result="succeeded"}`);
      assert.ok(Math.abs(stamp - run.finishedAt!.getTime() / 1000) < 0.001, `${stamp} vs ${run.finishedAt!.toISOString()}`);
    });

    test('the shadow is live: a served prediction is also scored by it and recorded under its version', async () => {
      const { data, errors } = await execute(server.url, PredictionDocument, { symbol: 'AAPL', strategy: D1 });
      assert.equal(errors, undefined, JSON.stringify(errors));
      assert.equal(data!.prediction.model.version, 'v1');
      const recorded = await eventually('a history row of the shadow version', async () => {
        const row = await server.gateway.database.db
          .selectFrom('prediction_history')
          .select(['model_version', 'symbol'])
          .where('model_version', '=', version())
          .executeTakeFirst();
        return row;
      });
      assert.equal(recorded.symbol, 'AAPL');
    });

    test('two schedulers on this one database firing the same tick: one trains, the other is skipped (the embedded stack runs one gateway per database)', async () => {
      const second = fireIn(0).at;
      const { gateway } = server;
      const other = new RetrainingService({
        strategies: [findStrategy(D1)!],
        family: 'logistic',
        timeoutMs: 120_000,
        maxMemoryMb: 1024,
        modelsDir: fixture.dir,
        runs: new RetrainRunsRepository(gateway.database.db),
        market: { source: 'stored', provider: gateway.market, engine: gateway.database.engine },
        registry: gateway.registry,
        lifecycle: gateway.lifecycle,
        metrics: createMetrics(),
        logger: silent,
        instance: 'second-scheduler',
      });
      const [mine, theirs] = await Promise.all([gateway.retraining.service!.runTick(second), other.runTick(second)]);
      const d1 = [mine!.find((o) => o.strategy === D1)!, theirs![0]!];
      assert.deepEqual(d1.map((o) => o.result).sort(), ['skipped', 'succeeded'], JSON.stringify(d1));
      assert.match(d1.find((o) => o.result === 'skipped')!.reason!, /claimed this tick|still going/);
      const rows = (await gateway.retraining.runs.recent(D1)).filter((r) => r.scheduledFor.getTime() === second.getTime());
      assert.equal(rows.length, 1);
      assert.equal((await strategies(server.url)).get(D1)!.shadowVersion?.version, rows[0]!.version);
      await other.close();
    });
  });

  describe('failure paths', () => {
    let fixture: ModelsFixture;
    const servers: TestGateway[] = [];
    before(async () => {
      fixture = await modelsFixture();
    });
    after(async () => {
      for (const server of servers) await server.close();
      fixture?.remove();
    });

    async function start(symbols: string[], from: string, env: Record<string, string> = {}) {
      const database = await databaseWithBars(await realBars(symbols, from));
      const schedule = fireIn(3);
      const server = await startTestGateway(
        { ...QUIET, MODELS_DIR: fixture.dir, ...schedule.env, RETRAIN_STRATEGIES: D1, ...env },
        { database },
      );
      servers.push(server);
      return { server, tick: schedule.at };
    }

    test('training that fails (too little data for its periods): audited failure, shadow unchanged, nothing written, the gateway serves on', async () => {
      const { server, tick } = await start(['KO'], '2019-06-01');
      const run = await finishedRun(server.gateway.retraining.runs, D1, tick);
      assert.equal(run.status, 'failed');
      assert.equal(run.detail.stage, 'training');
      assert.match(String(run.detail.reason), /period has \d+ samples; need at least 100/);
      const failed = (await auditOf(server, D1)).filter((r) => r.actor === 'scheduler');
      assert.deepEqual(
        failed.map((r) => [r.action, r.detail.stage]),
        [['model.retrain_failed', 'training']],
      );
      assert.equal((await strategies(server.url)).get(D1)!.shadowVersion, null);
      assert.deepEqual(versionsOnDisk(fixture, D1), ['v1']);
      assert.deepEqual(staged(fixture), []);
      assert.equal(await metricValue(server.url, `sibyl_retrain_runs_total{strategy="${D1}",result="failed"}`), 1);
      assert.ok((await metricValue(server.url, `sibyl_retrain_last_run_timestamp_seconds{strategy="${D1}",result="failed"}`)) > 0);
      const { errors } = await execute(server.url, PredictionDocument, { symbol: 'KO', strategy: D1 });
      assert.equal(errors, undefined);
    });

    test('a training past RETRAIN_TIMEOUT_MS: its child is killed, the run failed as a timeout, nothing registered', async () => {
      const { server, tick } = await start(THREE, THREE_FROM, { RETRAIN_TIMEOUT_MS: '1000' });
      const pid = await eventually('the training child', () => server.gateway.retraining.service!.current()?.pid, 20_000, 20);
      const run = await finishedRun(server.gateway.retraining.runs, D1, tick);
      assert.equal(run.status, 'failed', JSON.stringify(run.detail));
      assert.equal(run.detail.stage, 'timeout');
      assert.equal(alive(pid), false, `training process ${pid} still runs`);
      assert.equal((await strategies(server.url)).get(D1)!.shadowVersion, null);
      assert.deepEqual(versionsOnDisk(fixture, D1), ['v1']);
      assert.deepEqual(staged(fixture), []);
    });

    test('shutdown mid-training: the child is killed, the run recorded as cancelled, no version written or registered', async () => {
      const database = await databaseWithBars(await realBars(THREE, THREE_FROM));
      const schedule = fireIn(3);
      const server = await startTestGateway({ ...QUIET, MODELS_DIR: fixture.dir, ...schedule.env, RETRAIN_STRATEGIES: D1 }, { database });
      const pid = await eventually('the training child', () => server.gateway.retraining.service!.current()?.pid, 20_000, 20);
      assert.ok(alive(pid));
      await server.gateway.stop();
      assert.equal(alive(pid), false, `training process ${pid} outlived the gateway`);
      assert.deepEqual(versionsOnDisk(fixture, D1), ['v1']);
      assert.deepEqual(staged(fixture), []);
      const direct = await openDatabase(database.settings, silent);
      try {
        const [run] = await new RetrainRunsRepository(direct.db).recent(D1);
        assert.equal(run?.status, 'cancelled');
        assert.equal(run?.scheduledFor.toISOString(), schedule.at.toISOString());
        const audit = await direct.db
          .selectFrom('audit_log')
          .select(['action', 'actor'])
          .where('subject', '=', D1)
          .where('actor', '=', 'scheduler')
          .execute();
        assert.deepEqual(audit, [{ action: 'model.retrain_cancelled', actor: 'scheduler' }]);
        const serving = await direct.db
          .selectFrom('model_serving')
          .select(['shadow_version'])
          .where('strategy', '=', D1)
          .executeTakeFirst();
        assert.equal(serving?.shadow_version, null);
      } finally {
        await direct.close();
        await database.drop();
      }
    });
  });

  describe(
    'two gateways on one PostgreSQL database and Redis, one models directory',
    { skip: realPostgresUrl && realRedisUrl ? false : 'needs DATABASE_URL and REDIS_URL (PGlite admits one process)' },
    () => {
      let fixture: ModelsFixture;
      let database: TestDatabase;
      const servers: TestGateway[] = [];
      before(async () => {
        fixture = await modelsFixture();
        database = await databaseWithBars(await realBars(THREE, THREE_FROM));
      });
      after(async () => {
        for (const server of servers) await server.gateway.stop();
        await database?.drop();
        fixture?.remove();
      });

      test('both fire the tick, exactly one trains it, the other skips it, and both serve the new shadow', async () => {
        const schedule = fireIn(5);
        const env = {
          ...QUIET,
          MODELS_DIR: fixture.dir,
          ...schedule.env,
          RETRAIN_STRATEGIES: D1,
          REDIS_KEY_PREFIX: `retrain-two-${process.pid}:`,
        };
        const [a, b] = await Promise.all([startTestGateway(env, { database }), startTestGateway(env, { database })]);
        servers.push(a!, b!);
        const run = await finishedRun(a!.gateway.retraining.runs, D1, schedule.at);
        assert.equal(run.status, 'succeeded', JSON.stringify(run.detail));
        const rows = (await a!.gateway.retraining.runs.recent(D1)).filter((r) => r.scheduledFor.getTime() === schedule.at.getTime());
        assert.equal(rows.length, 1);
        const counts = await Promise.all(
          [a!, b!].map(async (s) => [
            await metricValue(s.url, `sibyl_retrain_runs_total{strategy="${D1}",result="succeeded"}`),
            await metricValue(s.url, `sibyl_retrain_runs_total{strategy="${D1}",result="skipped"}`),
          ]),
        );
        assert.deepEqual(counts.map((c) => c.join('/')).sort(), ['0/1', '1/0'], JSON.stringify(counts));
        for (const server of [a!, b!]) {
          await eventually('the shadow on both instances', async () =>
            (await strategies(server.url)).get(D1)!.shadowVersion?.version === run.version ? true : undefined,
          );
        }
        assert.equal(versionsOnDisk(fixture, D1).length, 2);
      });
    },
  );
});
