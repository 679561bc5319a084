import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { parseBarsCsv } from '../../src/infra/market-data/csv.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import {
  ActivateModelVersionDocument,
  SetShadowModelVersionDocument,
  StrategyPromotionsBriefDocument,
  StrategyPromotionsDocument,
  type StrategyPromotionsBriefQuery,
  type StrategyPromotionsQuery,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { degradeModel, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

const S = 'direction-1d';
const SYMBOLS = ['AAPL', 'JPM', 'XOM', 'MSFT', 'KO', 'PFE', 'WMT', 'INTC', 'CSCO', 'HD'];
const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');
const REPLAY_FROM = '2019-01-02';

type Decision = StrategyPromotionsQuery['strategies'][number]['promotions'][number];
type Brief = StrategyPromotionsBriefQuery['strategies'][number]['promotions'][number];

/** Real daily bars of the ten symbols from `from` to `to`, read in place from ../shared/data/market. */
function realBars(from: string, to: string): Bar[] {
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const [start, end] = [Date.parse(`${from}T00:00:00Z`), Date.parse(`${to}T00:00:00Z`)];
  return SYMBOLS.flatMap((symbol) => {
    const parsed = parseBarsCsv(readFileSync(path.join(dailyAdjusted, `DA-${symbol}-T-2021-04-21.csv`), 'utf8'), { file: symbol });
    assert.ok(parsed.ok, `${symbol}: ${JSON.stringify(parsed)}`);
    return parsed.bars.filter((b) => b.time.getTime() >= start && b.time.getTime() <= end);
  });
}

/**
 * A gateway replaying the real bars as a live market from 2019-01-02 (one trading day per tick): the
 * signals monitor predicts the ten watch-list symbols on every bar with the active version and the
 * shadow, history records both, the outcome job resolves them as the clock passes their horizon, and
 * the promotion loop evaluates after every outcome pass. Nothing is inserted behind its back.
 */
async function replayGateway(fixture: ModelsFixture, bars: readonly Bar[], env: Record<string, string>): Promise<TestGateway> {
  return startTestGateway(
    {
      MODELS_DIR: fixture.dir,
      MODELS_RESCAN_INTERVAL_MS: '0',
      MARKET_REPLAY_FROM: REPLAY_FROM,
      MARKET_REPLAY_TICK_MS: '100',
      SIGNALS_WATCHLIST: SYMBOLS.join(','),
      SIGNALS_INTERVAL_MS: '0',
      HISTORY_FLUSH_INTERVAL_MS: '50',
      OUTCOMES_INTERVAL_MS: '250',
      METRICS_BOOTSTRAP_REPLICATES: '200',
      PROMOTION_INTERVAL_MS: '2000',
      ...env,
    },
    { bars },
  );
}

/** The latest decisions with all their evidence (a few: the whole selection costs ~80 points per decision). */
async function promotions(
  server: TestGateway,
  last = 20,
): Promise<{ strategy: StrategyPromotionsQuery['strategies'][number]; decisions: Decision[] }> {
  const { data, errors } = await execute(server.url, StrategyPromotionsDocument, { last });
  assert.equal(errors, undefined, JSON.stringify(errors));
  const strategy = data!.strategies.find((s) => s.name === S)!;
  return { strategy, decisions: strategy.promotions };
}

/** Up to 200 latest decisions, in brief, newest first. */
async function briefs(server: TestGateway): Promise<Brief[]> {
  const { data, errors } = await execute(server.url, StrategyPromotionsBriefDocument, { last: 200 });
  assert.equal(errors, undefined, JSON.stringify(errors));
  return data!.strategies.find((s) => s.name === S)!.promotions;
}

/**
 * Polls the decisions until one satisfies `wanted` (returned in full). A GraphQL error fails at once;
 * on timeout the message shows where the replay and the policy had got to.
 */
async function waitForDecision(server: TestGateway, what: string, wanted: (d: Brief) => boolean, timeoutMs = 300_000): Promise<Decision> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await briefs(server)).findIndex(wanted);
    if (found >= 0) {
      const brief = (await briefs(server)).find(wanted)!;
      // Decisions keep coming: look it up by id among a few more than it had before it.
      // (≤ 55: the full selection costs ~80 points a decision, and MAX_QUERY_COST is 5,000.)
      const full = (await promotions(server, Math.min(55, found + 20))).decisions.find((d) => d.id === brief.id);
      if (full) return full;
    }
    if (Date.now() > deadline) {
      const latest = (await briefs(server)).slice(0, 5);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; latest decisions: ${JSON.stringify(latest)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Audit rows of the strategy, oldest first. */
async function auditRows(
  server: TestGateway,
): Promise<Array<{ id: number; actor: string; action: string; detail: Record<string, unknown> }>> {
  const { rows } = await sql<{ id: string; actor: string; action: string; detail: Record<string, unknown> }>`
    select id, actor, action, detail from audit_log where subject = ${S} order by id`.execute(server.gateway.database.db);
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

async function counter(server: TestGateway, action: string, applied: boolean): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`sibyl_model_promotions_total{strategy="${S}",action="${action}",applied="${applied}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** Brier and log loss of each version on the rows both predicted with a realized outcome, from the table itself. */
async function pairedLosses(
  server: TestGateway,
  a: string,
  b: string,
): Promise<{ rows: number; brierA: number; brierB: number; first: Date }> {
  const { rows } = await sql<{ rows: number; brier_a: number; brier_b: number; first: Date }>`
    select count(*)::int as rows, min(time) as first,
           avg(power(x.probability - (x.realized_return > 0)::int, 2)) as brier_a,
           avg(power(y.probability - (y.realized_return > 0)::int, 2)) as brier_b
    from prediction_outcomes x join prediction_outcomes y using (symbol, strategy, market_source, time)
    where x.strategy = ${S} and x.model_version = ${a} and y.model_version = ${b}`.execute(server.gateway.database.db);
  return { rows: rows[0]!.rows, brierA: rows[0]!.brier_a, brierB: rows[0]!.brier_b, first: rows[0]!.first };
}

describe(`promotion loop on the real data, replayed (${stackName})`, { timeout: 600_000 }, () => {
  describe('auto: the committed model in shadow beside a degraded copy of it is promoted', () => {
    let fixture: ModelsFixture;
    let server: TestGateway;
    let promoted: Decision;
    let seconds: number;

    before(async () => {
      fixture = await modelsFixture([S]);
      // v2: the committed model with noise on its weights (worse Brier, ECE still inside the bound), newer, so served by default.
      await fixture.addVersion(S, 'v2', { createdAt: '2027-01-01T00:00:00.000Z', damage: degradeModel({ weightNoise: 0.2 }) });
      server = await replayGateway(fixture, realBars('2018-06-01', '2019-07-31'), { PROMOTION_POLICY: 'auto', PROMOTION_MIN_DAYS: '100' });
      const started = performance.now();
      const shadow = await execute(server.url, SetShadowModelVersionDocument, { strategy: S, version: 'v1' });
      assert.equal(shadow.errors, undefined, JSON.stringify(shadow.errors));
      assert.equal(shadow.data!.setShadowModelVersion.activeVersion.version, 'v2');
      promoted = await waitForDecision(server, 'the promotion of v1', (d) => d.action === 'PROMOTE');
      seconds = (performance.now() - started) / 1000;
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    test('promoted by the policy once the interval of the Brier difference excluded 0 in its favour after the minimum days', async () => {
      const d = promoted;
      assert.deepEqual(
        [d.actor, d.policy, d.reason, d.applied, d.error, d.fromVersion, d.toVersion, d.shadowVersion],
        ['policy', 'AUTO', 'SHADOW_BETTER', true, null, 'v2', 'v1', 'v1'],
      );
      const c = d.comparison!;
      assert.equal(c.loss, 'brier');
      assert.ok(c.days >= 100, `days ${c.days}`);
      assert.ok(c.interval!.low > 0 && c.interval!.level === 0.95, JSON.stringify(c.interval));
      assert.ok(c.meanDifference! >= c.interval!.low && c.pValue! < 0.05, JSON.stringify(c));
      assert.equal(d.thresholds.minDays, 100);
      assert.equal(d.activeHealth.version, 'v2');
      assert.equal(d.shadowHealth!.version, 'v1');
      assert.deepEqual(d.shadowBreaches, []);
      // What one evaluation costs here now (v1 active, no shadow: its health window and the drift of ten symbols over 90 days).
      const started = performance.now();
      await server.gateway.promotion.evaluate(S);
      const evaluationMs = performance.now() - started;
      // The table itself agrees that v1 had the lower Brier on the paired rows.
      const paired = await pairedLosses(server, 'v2', 'v1');
      assert.ok(paired.rows >= c.rows && paired.brierA > paired.brierB, JSON.stringify(paired));
      console.log(
        `promoted after ${seconds.toFixed(1)} s of replay: ${c.days} days from ${paired.first.toISOString().slice(0, 10)}, ${c.rows} paired rows, Brier difference ${c.meanDifference!.toFixed(4)} ` +
          `[${c.interval!.low.toFixed(4)}, ${c.interval!.high.toFixed(4)}], p ${c.pValue!.toExponential(2)}; ` +
          `active ECE ${d.activeHealth.ece?.toFixed(3)} coverage ${d.activeHealth.coverage?.toFixed(3)} largest PSI ${d.activeHealth.driftPsi?.toFixed(2)} (${d.activeHealth.driftFeature}); ` +
          `one evaluation afterwards (no shadow) ${evaluationMs.toFixed(0)} ms`,
      );
    });

    test('the switch and its decision are one transaction in the audit log; v1 serves and the shadow is cleared', async () => {
      const rows = await auditRows(server);
      const decision = rows.find((r) => r.action === 'promotion.promote')!;
      const activation = rows.filter((r) => r.action === 'model.activate' && r.actor === 'policy');
      assert.equal(activation.length, 1);
      assert.deepEqual(activation[0]!.detail, { version: 'v1', previous: 'v2', shadow: null, promotedShadow: true });
      assert.equal(decision.id, activation[0]!.id + 1, 'written right after the activation, in its transaction');
      assert.equal(decision.actor, 'policy');
      const { strategy } = await promotions(server);
      assert.equal(strategy.activeVersion.version, 'v1');
      assert.equal(strategy.shadowVersion, null);
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v1');
      assert.equal(await counter(server, 'promote', true), 1);
    });

    test('before it, the policy held, saying why: too few days of paired outcomes; it never switched before', async () => {
      const decisions = await briefs(server);
      const before = decisions.filter((d) => Number(new Date(d.time)) < Number(new Date(promoted.time)));
      const tooFew = before.filter((d) => d.reason === 'TOO_FEW_DAYS');
      assert.ok(tooFew.length > 0, JSON.stringify(before.map((d) => d.reason)));
      for (const d of tooFew) {
        assert.equal(d.action, 'HOLD');
        assert.ok(d.comparison!.days < 100, `${d.comparison!.days} days`);
      }
      const held = (await auditRows(server)).filter((r) => r.action === 'promotion.hold' && r.detail.reason === 'TOO_FEW_DAYS');
      assert.ok(held.length >= tooFew.length, `${held.length} audited, ${tooFew.length} listed`);
      for (const r of held)
        assert.match(String(r.detail.summary), /day\(s\) of paired outcomes of v2 and v1; a promotion needs at least 100/);
      assert.deepEqual(
        before.filter((d) => d.applied),
        [],
      );
      // Each recorded decision says something new: no two in a row with the same evidence.
      const days = before.map((d) => JSON.stringify([d.action, d.reason, d.toVersion, d.comparison, d.activeHealth, d.shadowHealth]));
      assert.equal(new Set(days).size, days.length);
    });
  });

  describe('auto: a degraded active version is rolled back; a rollback that fails midway switches nothing', () => {
    let fixture: ModelsFixture;
    let server: TestGateway;

    before(async () => {
      fixture = await modelsFixture([S]);
      // v2: weights drowned in noise (calibration broken) and an interval 40% as wide as calibrated (coverage broken).
      await fixture.addVersion(S, 'v2', {
        createdAt: '2026-01-01T00:00:00.000Z',
        damage: degradeModel({ weightNoise: 1, intervalScale: 0.4 }),
      });
      server = await replayGateway(fixture, realBars('2018-06-01', '2019-06-28'), { PROMOTION_POLICY: 'auto' });
      // The rollback's decision row is refused by the database, in the transaction that switches: until
      // the trigger goes, every attempt must leave v2 serving and record why.
      await sql`
        create function refuse_policy_rollback() returns trigger language plpgsql as $$
        begin
          if new.action = 'promotion.rollback' and (new.detail->>'applied')::boolean then
            raise exception 'refused by the test: the decision row of a rollback cannot be written';
          end if;
          return new;
        end $$`.execute(server.gateway.database.db);
      await sql`create trigger refuse_policy_rollback before insert on audit_log for each row execute function refuse_policy_rollback()`.execute(
        server.gateway.database.db,
      );
      const activated = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version: 'v2' });
      assert.equal(activated.errors, undefined, JSON.stringify(activated.errors));
      assert.equal(activated.data!.activateModelVersion.activeVersion.version, 'v2');
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    test('a rollback whose transaction fails midway is recorded as failed, and nothing switched', async () => {
      const failed = await waitForDecision(server, 'a failed rollback', (d) => d.action === 'ROLLBACK');
      assert.deepEqual([failed.applied, failed.fromVersion, failed.toVersion, failed.actor], [false, 'v2', 'v1', 'policy']);
      // What a viewer may read: the lifecycle's coded message (the database's own words stay in the log).
      assert.match(failed.error!, /the model serving record could not be read or written; nothing changed/);
      // Everything the switch would have touched is as it was: the record, this instance, the audit log, what is served.
      const { rows } = await sql<{ active_version: string }>`select active_version from model_serving where strategy = ${S}`.execute(
        server.gateway.database.db,
      );
      assert.equal(rows[0]!.active_version, 'v2');
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v2');
      assert.deepEqual(
        (await auditRows(server)).filter((r) => r.actor === 'policy' && r.action === 'model.activate'),
        [],
      );
      const served = await execute(server.url, StrategyPromotionsBriefDocument, { last: 1 });
      assert.equal(served.data!.strategies.find((x) => x.name === S)!.activeVersion.version, 'v2');
      // Counted as recorded (attempts go on meanwhile, so read the counter on both sides of the list).
      const counted = await counter(server, 'rollback', false);
      const listed = (await briefs(server)).filter((d) => d.action === 'ROLLBACK').length;
      assert.ok(
        counted >= 1 && counted <= listed && listed <= (await counter(server, 'rollback', false)),
        `${counted} counted, ${listed} listed`,
      );
    });

    test('once the database accepts it, the degraded version is rolled back, audited with its evidence, and visible', async () => {
      await sql`drop trigger refuse_policy_rollback on audit_log`.execute(server.gateway.database.db);
      const d = await waitForDecision(server, 'the rollback', (x) => x.action === 'ROLLBACK' && x.applied);
      assert.deepEqual(
        [d.actor, d.policy, d.reason, d.error, d.fromVersion, d.toVersion, d.rollbackTarget],
        ['policy', 'AUTO', 'ACTIVE_DEGRADED', null, 'v2', 'v1', 'v1'],
      );
      const h = d.activeHealth;
      assert.ok(h.outcomes >= d.thresholds.minOutcomes, `${h.outcomes} outcomes`);
      const checks = new Map(d.breaches.map((b) => [b.check, b]));
      assert.ok(checks.get('coverage')!.value < 0.9 && checks.get('coverage')!.threshold === 0.9, JSON.stringify(d.breaches));
      assert.ok(checks.get('calibration')!.value > 0.2 && checks.get('calibration')!.threshold === 0.2, JSON.stringify(d.breaches));

      // The recorded coverage and ECE, recomputed here from v2's rows of the window.
      const { rows } = await sql<{ probability: number; up: number; covered: boolean }>`
        select probability, (realized_return > 0)::int as up, covered from prediction_outcomes
        where strategy = ${S} and model_version = 'v2' and market_source = 'stored'
          and time >= ${h.from}::timestamptz and time <= ${h.to}::timestamptz`.execute(server.gateway.database.db);
      // Outcomes of the window keep arriving after the decision (a row recorded late resolves on the next
      // pass), so the table now holds at least what the decision read, and says the same.
      assert.ok(rows.length >= h.outcomes && rows.length <= h.outcomes * 1.2, `${rows.length} rows now, ${h.outcomes} then`);
      const coverage = rows.filter((r) => r.covered).length / rows.length;
      const bins = Array.from({ length: 10 }, () => ({ n: 0, p: 0, y: 0 }));
      for (const r of rows) {
        const b = bins[Math.min(9, Math.floor(r.probability * 10))]!;
        b.n++;
        b.p += r.probability;
        b.y += r.up;
      }
      const ece = bins.reduce((sum, b) => sum + (b.n ? (b.n / rows.length) * Math.abs(b.p / b.n - b.y / b.n) : 0), 0);
      assert.ok(coverage < 0.9 && ece > 0.2, `recomputed: coverage ${coverage}, ECE ${ece}`);
      assert.ok(
        Math.abs(h.coverage! - coverage) < 0.05 && Math.abs(h.ece! - ece) < 0.05,
        `recorded ${h.coverage}/${h.ece}, now ${coverage}/${ece}`,
      );

      const audit = await auditRows(server);
      const activation = audit.filter((r) => r.action === 'model.activate' && r.actor === 'policy');
      assert.equal(activation.length, 1);
      assert.deepEqual(activation[0]!.detail, { version: 'v1', previous: 'v2', shadow: null });
      const decision = audit.find((r) => r.action === 'promotion.rollback' && r.detail.applied === true)!;
      assert.equal(decision.id, activation[0]!.id + 1);
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v1');
      assert.equal(await counter(server, 'rollback', true), 1);
      console.log(
        `rolled back at ${h.to?.slice(0, 10)} over ${h.outcomes} outcomes: coverage ${coverage.toFixed(3)}, ECE ${ece.toFixed(3)}, ` +
          `largest PSI ${h.driftPsi?.toFixed(2)} (${h.driftFeature}); ${(await briefs(server)).filter((x) => x.action === 'ROLLBACK' && !x.applied).length} failed attempt(s) before`,
      );
    });

    test('before there were enough outcomes it held (no shadow); after the rollback it does not flip back', async () => {
      const decisions = await briefs(server);
      const first = decisions.at(-1)!;
      assert.deepEqual([first.action, first.reason], ['HOLD', 'NO_SHADOW']);
      // More replayed days with v1 serving: v1 is healthy, v2 is never served again.
      const rolledBack = decisions.find((d) => d.action === 'ROLLBACK' && d.applied)!;
      await waitForDecision(server, 'a decision after the rollback', (d) => d.fromVersion === 'v1' && d.time > rolledBack.time, 120_000);
      const after = (await briefs(server)).filter((d) => d.time > rolledBack.time);
      assert.ok(
        after.every((d) => d.fromVersion === 'v1' && !d.applied && d.action === 'HOLD'),
        JSON.stringify(after),
      );
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v1');
    });
  });

  describe('manual: the same degradation is only recommended; nothing switches', () => {
    let fixture: ModelsFixture;
    let server: TestGateway;

    before(async () => {
      fixture = await modelsFixture([S]);
      await fixture.addVersion(S, 'v2', {
        createdAt: '2026-01-01T00:00:00.000Z',
        damage: degradeModel({ weightNoise: 1, intervalScale: 0.4 }),
      });
      server = await replayGateway(fixture, realBars('2018-06-01', '2019-04-30'), { PROMOTION_POLICY: 'manual' });
      const activated = await execute(server.url, ActivateModelVersionDocument, { strategy: S, version: 'v2' });
      assert.equal(activated.errors, undefined, JSON.stringify(activated.errors));
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    test('the rollback is recorded as a recommendation (MANUAL, not applied), again as evidence grows, and v2 keeps serving', async () => {
      const first = await waitForDecision(server, 'a rollback recommendation', (d) => d.action === 'ROLLBACK');
      assert.deepEqual([first.policy, first.applied, first.error, first.fromVersion, first.toVersion], ['MANUAL', false, null, 'v2', 'v1']);
      assert.match(first.summary, /roll back to v1 \(manual policy: recommended, not switched\)/);
      const second = await waitForDecision(
        server,
        'a second recommendation',
        (d) => d.action === 'ROLLBACK' && d.time > first.time,
        120_000,
      );
      assert.ok(second.activeHealth.outcomes > first.activeHealth.outcomes);
      const { rows } = await sql<{ active_version: string }>`select active_version from model_serving where strategy = ${S}`.execute(
        server.gateway.database.db,
      );
      assert.equal(rows[0]!.active_version, 'v2');
      assert.equal(server.gateway.registry.active(S)!.manifest.version, 'v2');
      assert.deepEqual(
        (await auditRows(server)).filter((r) => r.actor === 'policy' && r.action.startsWith('model.')),
        [],
      );
      assert.ok((await counter(server, 'rollback', false)) >= 2);
      assert.equal(await counter(server, 'rollback', true), 0);
    });
  });
});
