import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { POWER_80_Z } from '../../src/domain/comparison.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import type { RetrainRun } from '../../src/modules/retraining/index.js';
import {
  CompareModelsDocument,
  StrategyPromotionsDocument,
  StrategyVersionsDocument,
  type CompareModelsQuery,
  type StrategyPromotionsQuery,
} from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { marketDataMissing } from '../helpers/market-source.js';
import { eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { databaseWithBars, fireIn, realBars } from '../helpers/retraining.js';
import { stackName } from '../helpers/services.js';

/**
 * The loop of issue 22 in one gateway on the real data (../shared/data/market): the stored bars are
 * replayed as a live market from 2019-01-02, one trading day per 100 ms; a schedule fires once a few
 * seconds after start; the scheduled run trains a candidate on the stored bars the replay clock lets it
 * see, registers it as the shadow; the signals monitor then scores every replayed bar with the active
 * version and the candidate, the outcome job resolves both on the same rows, and the `auto` policy
 * decides about the candidate. compareModels over GraphQL must report what the policy decided on.
 * Nothing is inserted behind the gateway's back, and no figure is hard-coded: each is checked against
 * the table or against the others.
 */
const S = 'direction-1d';
/** Three real symbols: ten years before the replay to train on (three held out, three validated). */
const SYMBOLS = ['AAPL', 'JPM', 'XOM'];
const REPLAY_FROM = '2019-01-02';
/** The replay stops at the last bar of 2019: ~250 replayed days (25 s at 100 ms a day, more on a busy machine). */
const STORED_UNTIL = '2020-01-01';
const MIN_DAYS = 60;
const missing = marketDataMissing();
if (missing && process.env.CI) throw new Error(missing);

type Decision = StrategyPromotionsQuery['strategies'][number]['promotions'][number];
type Loss = CompareModelsQuery['compareModels']['brier'];

const day = (d: Date | string) => new Date(d).toISOString().slice(0, 10);

async function strategy(server: TestGateway) {
  const { data, errors } = await execute(server.url, StrategyVersionsDocument);
  assert.equal(errors, undefined, JSON.stringify(errors));
  return data!.strategies.find((s) => s.name === S)!;
}

async function decisions(server: TestGateway, last = 20): Promise<Decision[]> {
  const { data, errors } = await execute(server.url, StrategyPromotionsDocument, { last });
  assert.equal(errors, undefined, JSON.stringify(errors));
  return data!.strategies.find((s) => s.name === S)!.promotions;
}

async function compare(server: TestGateway, a: string, b: string, window: { from?: string; to?: string } = {}) {
  const { data, errors } = await execute(server.url, CompareModelsDocument, { strategy: S, a, b, ...window });
  assert.equal(errors, undefined, JSON.stringify(errors));
  return data!.compareModels;
}

/** The rows both versions predicted with a realized outcome, counted in the outcomes table itself. */
async function pairedRows(server: TestGateway, a: string, b: string) {
  const { rows } = await sql<{ rows: number; days: number; first: Date | null; last: Date | null }>`
    select count(*)::int as rows, count(distinct date_trunc('day', x.time at time zone 'UTC'))::int as days,
           min(x.time) as first, max(x.time) as last
    from prediction_outcomes x join prediction_outcomes y using (symbol, strategy, market_source, time)
    where x.strategy = ${S} and x.model_version = ${a} and y.model_version = ${b}`.execute(server.gateway.database.db);
  return rows[0]!;
}

/** What the policy must say about a candidate given compareModels' figures on its loss (src/domain/promotion.ts). */
function holdReasonFor(c: Loss, minDays: number, level: number): string {
  if (c.days < minDays) return 'TOO_FEW_DAYS';
  if (c.interval === null || c.meanDifference === null || c.pValue === null) return 'NO_INTERVAL_YET';
  if (c.verdict === 'A_BETTER') return 'ACTIVE_BETTER';
  if (c.verdict === 'B_BETTER') return 'SHADOW_BETTER';
  assert.ok(!(c.pValue < 1 - level && c.interval.low > 0) && !(c.pValue < 1 - level && c.interval.high < 0), JSON.stringify(c));
  return 'NO_DIFFERENCE_YET';
}

describe(
  `retrain on a schedule, then compare and decide on the replayed outcomes (${stackName})`,
  { skip: missing, timeout: 600_000 },
  () => {
    let fixture: ModelsFixture;
    let server: TestGateway;
    let bars: Bar[];
    let run: RetrainRun;
    let candidate: string;
    let registered: Awaited<ReturnType<typeof strategy>>;
    let manifest: { data: { to: string; from: string; bars: number; symbols: string[] } };
    let seconds: { trained: number; replayed: number };

    before(async () => {
      fixture = await modelsFixture([S]);
      bars = await realBars(SYMBOLS, '2009-01-01', STORED_UNTIL);
      // Imported before the schedule is set: the tick must come after the gateway is up.
      const database = await databaseWithBars(bars);
      const schedule = fireIn(3);
      const started = performance.now();
      server = await startTestGateway(
        {
          MODELS_DIR: fixture.dir,
          MARKET_REPLAY_FROM: REPLAY_FROM,
          MARKET_REPLAY_TICK_MS: '100',
          SIGNALS_WATCHLIST: SYMBOLS.join(','),
          SIGNALS_INTERVAL_MS: '0',
          HISTORY_FLUSH_INTERVAL_MS: '50',
          OUTCOMES_INTERVAL_MS: '250',
          METRICS_BOOTSTRAP_REPLICATES: '200',
          PROMOTION_INTERVAL_MS: '2000',
          PROMOTION_POLICY: 'auto',
          PROMOTION_MIN_DAYS: String(MIN_DAYS),
          RETRAIN_STRATEGIES: S,
          ...schedule.env,
        },
        { database },
      );
      run = await eventually(
        `the scheduled run of ${schedule.at.toISOString()} to finish`,
        async () =>
          (await server.gateway.retraining.runs.recent(S)).find(
            (r) => r.scheduledFor.getTime() === schedule.at.getTime() && r.status !== 'running',
          ),
        180_000,
        100,
      );
      // Read at once: the policy may promote the candidate later on, which clears the shadow.
      registered = await strategy(server);
      const trained = (performance.now() - started) / 1000;
      assert.equal(run.status, 'succeeded', JSON.stringify(run.detail));
      candidate = run.version!;
      manifest = JSON.parse(readFileSync(path.join(fixture.dir, S, candidate, 'manifest.json'), 'utf8'));
      // The replay stops at the last stored bar; every 1-day outcome but the last day's then resolves.
      const lastBar = bars.reduce((m, b) => (b.time > m ? b.time : m), bars[0]!.time);
      const lastResolvable = day(bars.filter((b) => b.time < lastBar).reduce((m, b) => (b.time > m ? b.time : m), bars[0]!.time));
      await eventually(
        `the replay to reach ${day(lastBar)} and the outcomes of ${lastResolvable} to resolve`,
        async () => {
          const paired = await pairedRows(server, 'v1', candidate);
          return paired.last && day(paired.last) === lastResolvable ? true : undefined;
        },
        240_000,
        250,
      );
      seconds = { trained, replayed: (performance.now() - started) / 1000 };
      // One evaluation on the final evidence (recorded only if it differs from the last one recorded).
      await server.gateway.promotion.evaluate(S);
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    test('the scheduled run trained a candidate on the stored bars the replay clock showed, and registered it as shadow', () => {
      assert.match(candidate, /^r\d{8}T\d{6}Z$/);
      assert.equal(registered.activeVersion.version, 'v1');
      assert.equal(registered.shadowVersion?.version, candidate);
      assert.ok(registered.versions.some((v) => v.version === candidate && v.shadow));
      assert.deepEqual(manifest.data.symbols, SYMBOLS);
      // Trained on what the market showed when the run read it: from 2009 up to a replayed day, never past it.
      assert.ok(manifest.data.to >= REPLAY_FROM && manifest.data.to < STORED_UNTIL, manifest.data.to);
      // The run reads a few symbols at a time while the clock moves: each symbol up to a day at most data.to.
      const before = bars.filter((b) => day(b.time) < REPLAY_FROM).length;
      const seen = bars.filter((b) => day(b.time) <= manifest.data.to).length;
      assert.ok(manifest.data.bars > before && manifest.data.bars <= seen, `${manifest.data.bars} bars, ${before}..${seen} possible`);
    });

    test('audited as the scheduler: the shadow change, then the run with its figures', async () => {
      const { rows } = await sql<{ actor: string; action: string; detail: Record<string, unknown> }>`
      select actor, action, detail from audit_log where subject = ${S} and actor = 'scheduler' order by id`.execute(
        server.gateway.database.db,
      );
      assert.deepEqual(
        rows.map((r) => [r.action, r.detail.version]),
        [
          ['model.shadow', candidate],
          ['model.retrained', candidate],
        ],
      );
      assert.equal((rows[1]!.detail.data as { to: string }).to, manifest.data.to);
    });

    test('compareModels reports the Brier and log-loss differences on the paired replayed rows, with interval, p-value and power', async () => {
      const whole = await compare(server, 'v1', candidate);
      const paired = await pairedRows(server, 'v1', candidate);
      // The paired rows are those the candidate scored after it was trained: every one after its data.
      assert.ok(day(paired.first!) > manifest.data.to, `${day(paired.first!)} vs trained up to ${manifest.data.to}`);
      assert.equal(day(whole.from!), day(paired.first!));
      assert.equal(day(whole.to!), day(paired.last!));
      // The same window asked explicitly gives the same figures.
      const windowed = await compare(server, 'v1', candidate, { from: whole.from!, to: whole.to! });
      assert.deepEqual(windowed.brier, whole.brier);
      assert.deepEqual(windowed.logLoss, whole.logLoss);
      for (const c of [whole.brier, whole.logLoss]) {
        assert.equal(c.rows, paired.rows, c.loss);
        assert.equal(c.days, paired.days, c.loss);
        assert.ok(c.days >= 6 * 19, `${c.days} days: at least six months replayed after the candidate arrived`);
        assert.equal(c.rows, c.days * SYMBOLS.length, 'both versions scored every watched symbol on every replayed day');
        for (const x of [c.meanA, c.meanB, c.meanDifference, c.pValue, c.dmStatistic, c.longRunVariance, c.mde80])
          assert.ok(Number.isFinite(x), JSON.stringify(c));
        const i = c.interval!;
        assert.equal(i.level, 0.95);
        assert.ok(i.low <= c.meanDifference! && c.meanDifference! <= i.high && i.low < i.high, JSON.stringify(c));
        assert.ok(c.pValue! > 0 && c.pValue! <= 1);
        // Power: the MDE is z-sum × the difference's standard error; the days still needed follow from the variance.
        assert.ok(Math.abs(c.mde80! - POWER_80_Z * Math.sqrt(c.longRunVariance! / c.days)) < 1e-12, JSON.stringify(c));
        assert.ok(Number.isInteger(c.daysStillNeeded) && c.daysStillNeeded! >= 0, JSON.stringify(c));
        assert.equal(c.daysStillNeeded, Math.max(0, Math.ceil((c.longRunVariance! * POWER_80_Z ** 2) / c.meanDifference! ** 2 - c.days)));
        const decisive = c.pValue! < 0.05 && (i.low > 0 || i.high < 0);
        assert.equal(c.verdict, decisive ? (i.low > 0 ? 'B_BETTER' : 'A_BETTER') : 'NO_DIFFERENCE_YET', JSON.stringify(c));
      }
      console.log(
        `candidate ${candidate} trained on bars to ${manifest.data.to} (run done ${seconds.trained.toFixed(1)} s after start); ` +
          `replay over at ${seconds.replayed.toFixed(1)} s; ${whole.brier.days} paired days ${day(whole.from!)}..${day(whole.to!)}, ${whole.brier.rows} rows; ` +
          `Brier v1 − candidate ${whole.brier.meanDifference!.toExponential(2)} [${whole.brier.interval!.low.toExponential(2)}, ${whole.brier.interval!.high.toExponential(2)}], ` +
          `p ${whole.brier.pValue!.toFixed(3)}, MDE80 ${whole.brier.mde80!.toExponential(2)}, ${whole.brier.daysStillNeeded} more days, ${whole.brier.verdict}`,
      );
    });

    test('with PROMOTION_POLICY=auto the decision about the candidate is recorded, and it is the one the comparison gives', async () => {
      const about = (await decisions(server)).filter((d) => d.shadowVersion === candidate || d.toVersion === candidate);
      assert.ok(about.length > 0, 'no decision names the candidate');
      const promoted = about.find((d) => d.action === 'PROMOTE');
      const final = promoted ?? about[0]!;
      const c = final.comparison!;
      assert.deepEqual([final.actor, final.policy, final.fromVersion], ['policy', 'AUTO', 'v1']);
      assert.equal(final.thresholds.minDays, MIN_DAYS);
      assert.ok(final.summary.length > 0);
      if (promoted) {
        // Promoted mid-replay: its evidence then was decisive for the candidate, and it switched.
        assert.deepEqual([promoted.reason, promoted.applied, promoted.toVersion, promoted.error], ['SHADOW_BETTER', true, candidate, null]);
        assert.ok(c.days >= MIN_DAYS && c.interval!.low > 0 && c.pValue! < 0.05, JSON.stringify(c));
        assert.equal((await strategy(server)).activeVersion.version, candidate);
        return;
      }
      // Held: the decision read compareModels on every paired row, which the replay has now all resolved.
      const whole = (await compare(server, 'v1', candidate)).brier;
      assert.deepEqual(
        [c.loss, c.days, c.rows, c.meanDifference, c.interval, c.pValue, c.mde80, c.daysStillNeeded],
        [
          'brier',
          whole.days,
          whole.rows,
          whole.meanDifference,
          whole.interval && { low: whole.interval.low, high: whole.interval.high, level: whole.interval.level },
          whole.pValue,
          whole.mde80,
          whole.daysStillNeeded,
        ],
      );
      const expected = holdReasonFor(whole, MIN_DAYS, final.thresholds.level);
      if (final.breaches.length === 0) {
        assert.equal(
          final.reason,
          expected === 'SHADOW_BETTER' && final.shadowBreaches.length ? 'SHADOW_UNHEALTHY' : expected,
          final.summary,
        );
        assert.deepEqual(
          [final.action, final.applied],
          expected === 'SHADOW_BETTER' && !final.shadowBreaches.length ? ['PROMOTE', true] : ['HOLD', false],
        );
      } else {
        // The active version broke a check: a rollback or an alert takes precedence over a hold.
        assert.ok(['ROLLBACK', 'ALERT'].includes(final.action), JSON.stringify(final));
      }
      assert.equal((await strategy(server)).shadowVersion?.version, candidate);
      const audited = await sql<{ n: number }>`
      select count(*)::int as n from audit_log where subject = ${S} and actor = 'policy' and action like 'promotion.%'
        and detail->>'shadowVersion' = ${candidate}`.execute(server.gateway.database.db);
      assert.ok(audited.rows[0]!.n >= about.length, `${audited.rows[0]!.n} audited, ${about.length} listed`);
      console.log(`decision about ${candidate}: ${final.action} ${final.reason}: ${final.summary}`);
    });
  },
);
