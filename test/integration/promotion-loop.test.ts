import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { StrategyPromotionsBriefDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, postQuery } from '../helpers/graphql.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { storeOutcomes } from '../helpers/outcomes.js';
import { createTestDatabase, realPostgresUrl, realRedisUrl, stackName, type TestDatabase } from '../helpers/services.js';

const S = 'direction-1d';
const SYMBOLS = ['PA', 'PB', 'PC', 'PD', 'PE'];
const DAY = 86_400_000;

/** The test's own PRNG (LCG), so the data do not depend on the code under test. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 4_294_967_296;
}

/**
 * Paired history with outcomes for `days` weekdays from 2022-01-03: v2 predicts from the true
 * probability, v1 from a noisy copy (so v2, the shadow, has the lower Brier), written through the
 * history repository and resolved by SQL as the outcome job would.
 */
async function insertPairedHistory(server: TestGateway, firstDay: number, days: number, seed: number): Promise<void> {
  const random = lcg(seed);
  const rows: HistoryRow[] = [];
  const up = new Map<string, number>();
  for (let d = firstDay; d < firstDay + days; d++) {
    const time = new Date(Date.UTC(2022, 0, 3) + d * DAY);
    if (time.getUTCDay() === 0 || time.getUTCDay() === 6) continue;
    for (const symbol of SYMBOLS) {
      const truth = 0.3 + 0.4 * random();
      const noisy = Math.min(0.99, Math.max(0.01, truth + 0.3 * (random() - 0.5)));
      const featuresHash = `${symbol}-${d}`;
      up.set(featuresHash, random() < truth ? 1 : 0);
      rows.push(recordedPrediction({ time, symbol, probability: noisy, featuresHash, modelVersion: 'v1', marketSource: 'synthetic' }));
      rows.push(recordedPrediction({ time, symbol, probability: truth, featuresHash, modelVersion: 'v2', marketSource: 'synthetic' }));
    }
  }
  const db = server.gateway.database.db;
  await new HistoryRepository(db).insertMany(rows);
  const hashes = [...up.keys()];
  await storeOutcomes(db, {
    from: sql`prediction_history h join unnest(${hashes}::text[], ${hashes.map((h) => up.get(h)!)}::int[]) as o(hash, y) on h.features_hash = o.hash`,
    realizedReturn: sql`case when o.y = 1 then 0.01 else -0.01 end`,
    covered: sql`true`,
  });
}

async function decisionRows(server: TestGateway): Promise<Array<{ action: string; detail: Record<string, unknown> }>> {
  const { rows } = await sql<{ action: string; detail: Record<string, unknown> }>`
    select action, detail from audit_log where action like 'promotion.%' order by id`.execute(server.gateway.database.db);
  return rows;
}

async function metric(server: TestGateway, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const ENV = {
  SYNTHETIC_TICK_MS: '0',
  OUTCOMES_INTERVAL_MS: '0',
  METRICS_BOOTSTRAP_REPLICATES: '200',
  // Drift needs stored bars of the window; these rows are inserted, not served.
  PROMOTION_MAX_DRIFT_PSI: '0',
};

/**
 * The promotion loop of a whole gateway, evaluated on demand (`gateway.promotion.evaluate`) over paired
 * history inserted for eight months: what it records under each policy, that it does not repeat itself,
 * that a fault part-way through gathering evidence changes nothing, and (PostgreSQL + Redis) that one
 * instance at a time evaluates.
 */
describe(`promotion loop (${stackName})`, () => {
  let fixture: ModelsFixture;

  before(async () => {
    fixture = await modelsFixture([S]);
    // v2 is older, so v1 is served by default; its recalibration makes its probabilities differ from v1's.
    await fixture.addVersion(S, 'v2', { createdAt: '2020-01-01T00:00:00.000Z', calibrationShift: 0.1 });
  });
  after(() => fixture?.remove());

  describe('manual policy', () => {
    let server: TestGateway;
    before(async () => {
      server = await startTestGateway({ ...ENV, MODELS_DIR: fixture.dir, PROMOTION_POLICY: 'manual', PROMOTION_INTERVAL_MS: '0' });
      await server.gateway.lifecycle.setShadow(S, 'v2', 'test');
      await insertPairedHistory(server, 0, 240, 5);
    });
    after(() => server?.close());

    test('a shadow proven better is recommended, not switched; the same evidence is not recorded twice; new evidence is', async () => {
      const first = await server.gateway.promotion.evaluate(S);
      assert.ok(first.recorded, JSON.stringify(first));
      const d = first.decision;
      assert.deepEqual(
        [d.policy, d.action, d.reason, d.applied, d.fromVersion, d.toVersion],
        ['manual', 'PROMOTE', 'SHADOW_BETTER', false, 'v1', 'v2'],
      );
      assert.ok(d.comparison!.days >= 120 && d.comparison!.interval!.low > 0, JSON.stringify(d.comparison));
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v1');
      assert.equal(server.gateway.registry.shadow(S)!.manifest.version, 'v2');

      assert.deepEqual(await server.gateway.promotion.evaluate(S), { strategy: S, recorded: false, why: 'unchanged' });
      assert.equal((await decisionRows(server)).length, 1);
      await insertPairedHistory(server, 240, 3, 6);
      const again = await server.gateway.promotion.evaluate(S);
      assert.ok(again.recorded && again.decision.comparison!.days > d.comparison!.days);
      assert.equal((await decisionRows(server)).length, 2);
      assert.equal(await metric(server, `sibyl_model_promotions_total{strategy="${S}",action="promote",applied="false"}`), 2);
    });

    test('Strategy.promotions refuses a bad `last` with BAD_USER_INPUT and lists newest first', async () => {
      for (const last of [0, 201]) {
        const { errors } = await postQuery(server.url, `{ strategies { promotions(last: ${last}) { action } } }`);
        assert.equal(errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(errors));
      }
      const { data, errors } = await execute(server.url, StrategyPromotionsBriefDocument, { last: 1 });
      assert.equal(errors, undefined);
      const listed = data!.strategies.find((s) => s.name === S)!.promotions;
      assert.equal(listed.length, 1);
      assert.ok(listed[0]!.comparison!.days > 160, 'the newest (more days) first');
    });
  });

  describe('auto policy', () => {
    let server: TestGateway;
    before(async () => {
      server = await startTestGateway({ ...ENV, MODELS_DIR: fixture.dir, PROMOTION_POLICY: 'auto', PROMOTION_INTERVAL_MS: '0' });
      await server.gateway.lifecycle.setShadow(S, 'v2', 'test');
      await insertPairedHistory(server, 0, 240, 5);
    });
    after(() => server?.close());

    test('a database fault part-way through the evidence decides nothing, records nothing, switches nothing, and is counted', async () => {
      const db = server.gateway.database.db;
      // The comparison and the health read prediction_outcomes; the rollback target and the last decision read audit_log.
      await sql`alter table audit_log rename to audit_log_away`.execute(db);
      try {
        await assert.rejects(server.gateway.promotion.evaluate(S), /audit_log/);
        const results = await server.gateway.promotion.evaluateAll();
        assert.deepEqual(results, [], 'the failed strategy is left out, not recorded');
      } finally {
        await sql`alter table audit_log_away rename to audit_log`.execute(db);
      }
      assert.equal(await metric(server, `sibyl_model_promotion_failures_total{strategy="${S}"}`), 1);
      assert.deepEqual(await decisionRows(server), []);
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v1');
      const { rows } = await sql<{ active_version: string }>`select active_version from model_serving where strategy = ${S}`.execute(db);
      assert.equal(rows[0]!.active_version, 'v1');
    });

    test('then the shadow is promoted, in one transaction with its decision', async () => {
      const result = await server.gateway.promotion.evaluate(S);
      assert.ok(result.recorded && result.decision.applied && result.decision.action === 'PROMOTE', JSON.stringify(result));
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v2');
      assert.equal(server.gateway.registry.shadow(S), undefined);
      const { rows } = await sql<{ actor: string; action: string }>`
        select actor, action from audit_log where subject = ${S} order by id desc limit 2`.execute(server.gateway.database.db);
      assert.deepEqual(rows, [
        { actor: 'policy', action: 'promotion.promote' },
        { actor: 'policy', action: 'model.activate' },
      ]);
      // Nothing in shadow now: the next evaluation holds, saying so.
      const next = await server.gateway.promotion.evaluate(S);
      assert.ok(next.recorded);
      assert.deepEqual([next.decision.action, next.decision.reason, next.decision.fromVersion], ['HOLD', 'NO_SHADOW', 'v2']);
    });

    test('a switch decided on a version that no longer serves is refused, and nothing changes', async () => {
      await assert.rejects(
        server.gateway.lifecycle.activate(S, 'v1', 'policy', { expectActive: 'v1' }),
        /direction-1d is served by v2, not v1: the decision is stale; nothing changed/,
      );
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v2');
    });
  });

  describe(
    'one instance at a time',
    { skip: !(realPostgresUrl && realRedisUrl) && 'needs PostgreSQL and Redis (two instances on one database)' },
    () => {
      let database: TestDatabase;
      const servers: TestGateway[] = [];
      before(async () => {
        database = await createTestDatabase();
        const env = { ...ENV, MODELS_DIR: fixture.dir, PROMOTION_POLICY: 'manual', PROMOTION_INTERVAL_MS: '200', SIGNALS_LEASE_MS: '1000' };
        const prefix = `promotion-lease-${process.pid}-${Date.now()}:`;
        // The same key prefix: both contend for the same lease.
        for (let i = 0; i < 2; i++) servers.push(await startTestGateway({ ...env, REDIS_KEY_PREFIX: prefix }, { database }));
        await servers[0]!.gateway.lifecycle.setShadow(S, 'v2', 'test');
        await insertPairedHistory(servers[0]!, 0, 240, 5);
      });
      after(async () => {
        for (const server of servers) await server.gateway.stop();
        await database?.drop();
      });

      test('only the holder of the lease evaluates; when it stops, the other takes over', async () => {
        const counted = (server: TestGateway) =>
          metric(server, `sibyl_model_promotions_total{strategy="${S}",action="promote",applied="false"}`);
        await eventually(
          'a recommendation',
          async () => ((await counted(servers[0]!)) + (await counted(servers[1]!)) > 0 ? true : undefined),
          20_000,
        );
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const counts = [await counted(servers[0]!), await counted(servers[1]!)];
        assert.deepEqual([...counts].sort(), [0, 1], `one instance recorded it once: ${counts}`);
        const holder = counts[0] === 1 ? 0 : 1;
        await servers[holder]!.gateway.stop();
        // New evidence: the other instance, now holding the lease, records it.
        await insertPairedHistory(servers[1 - holder]!, 240, 3, 6);
        await eventually(
          'the other instance to take over',
          async () => ((await counted(servers[1 - holder]!)) === 1 ? true : undefined),
          20_000,
        );
        servers.splice(holder, 1);
      });
    },
  );
});
