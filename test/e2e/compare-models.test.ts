import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { normalCdf, POWER_80_Z } from '../../src/domain/comparison.js';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { CompareModelsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { recordedPrediction } from '../helpers/history-rows.js';
import { modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { stackName } from '../helpers/services.js';
import { storeOutcomes } from '../helpers/outcomes.js';

const S = 'direction-1d';
const SYMBOLS = ['CA', 'CB', 'CC', 'CD', 'CE'];
const DAY = 86_400_000;

/** The test's own PRNG (LCG), so the data do not depend on the code under test. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) / 4_294_967_296;
}

const codeOf = (errors: ReadonlyArray<{ extensions?: Record<string, unknown> }> | undefined) => errors?.[0]?.extensions?.code;

/**
 * compareModels through a whole in-process gateway: two loaded versions with history rows inserted for
 * ~8 months of weekdays, where v2 predicts from the true probability and v1 from a noisy copy of it.
 * Every figure is recomputed here from the inserted rows, by the test's own formulas.
 */
describe(`compareModels over GraphQL (${stackName})`, () => {
  let fixture: ModelsFixture;
  let server: TestGateway;
  const rows: HistoryRow[] = [];
  const y = new Map<string, number>();

  before(async () => {
    fixture = await modelsFixture([S]);
    await fixture.addVersion(S, 'v2', { calibrationShift: 0.1 });
    server = await startTestGateway({
      MODELS_DIR: fixture.dir,
      SYNTHETIC_TICK_MS: '0',
      OUTCOMES_INTERVAL_MS: '0',
      METRICS_BOOTSTRAP_REPLICATES: '200',
    });
    const random = lcg(5);
    for (let d = 0; d < 240; d++) {
      const time = new Date(Date.UTC(2022, 0, 3) + d * DAY);
      if (time.getUTCDay() === 0 || time.getUTCDay() === 6) continue;
      for (const symbol of SYMBOLS) {
        const truth = 0.3 + 0.4 * random();
        const noisy = Math.min(0.99, Math.max(0.01, truth + 0.3 * (random() - 0.5)));
        const featuresHash = `${symbol}-${d}`;
        y.set(featuresHash, random() < truth ? 1 : 0);
        rows.push(recordedPrediction({ time, symbol, probability: noisy, featuresHash, modelVersion: 'v1', marketSource: 'synthetic' }));
        rows.push(recordedPrediction({ time, symbol, probability: truth, featuresHash, modelVersion: 'v2', marketSource: 'synthetic' }));
      }
    }
    const db = server.gateway.database.db;
    await new HistoryRepository(db).insertMany(rows);
    const hashes = [...y.keys()];
    await storeOutcomes(db, {
      from: sql`prediction_history h join unnest(${hashes}::text[], ${hashes.map((h) => y.get(h)!)}::int[]) as o(hash, y) on h.features_hash = o.hash`,
      realizedReturn: sql`case when o.y = 1 then 0.01 else -0.01 end`,
    });
  });
  after(async () => {
    await server?.close();
    fixture?.remove();
  });

  /** Daily mean loss differences v1 − v2, from the inserted rows. */
  function dailyDifferences(loss: (p: number, y: number) => number): number[] {
    const days = new Map<string, { n: number; d: number }>();
    const byKey = new Map(rows.filter((r) => r.modelVersion === 'v2').map((r) => [r.featuresHash, r]));
    for (const a of rows) {
      if (a.modelVersion !== 'v1') continue;
      const b = byKey.get(a.featuresHash)!;
      const outcome = y.get(a.featuresHash)!;
      const day = a.time.toISOString().slice(0, 10);
      const e = days.get(day) ?? { n: 0, d: 0 };
      e.n++;
      e.d += loss(a.probability, outcome) - loss(b.probability, outcome);
      days.set(day, e);
    }
    return [...days].sort(([p], [q]) => p.localeCompare(q)).map(([, e]) => e.d / e.n);
  }

  test('figures equal a recomputation from the inserted rows; the better model (b) wins on both losses', async () => {
    const { data, errors } = await execute(server.url, CompareModelsDocument, { strategy: S, a: 'v1', b: 'v2' });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const c = data!.compareModels;
    assert.equal(c.source, 'synthetic', 'the serving market by default');
    const brier = (p: number, o: number) => (p - o) ** 2;
    const logLoss = (p: number, o: number) => -(o * Math.log(p) + (1 - o) * Math.log(1 - p));
    for (const [name, got, loss] of [
      ['brier', c.brier, brier],
      ['logLoss', c.logLoss, logLoss],
    ] as const) {
      const d = dailyDifferences(loss);
      const T = d.length;
      const mean = d.reduce((s, v) => s + v, 0) / T;
      const L = Math.floor(Math.cbrt(T));
      let lrv = 0;
      for (let s = 0; s < T; s++)
        for (let t = 0; t < T; t++) if (Math.abs(s - t) <= L) lrv += (1 - Math.abs(s - t) / (L + 1)) * (d[s]! - mean) * (d[t]! - mean);
      lrv /= T;
      const dm = mean / Math.sqrt(lrv / T);
      const close = (x: number | null | undefined, want: number, what: string) =>
        assert.ok(x != null && Math.abs(x - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${name} ${what}: ${x} vs ${want}`);
      assert.equal(got.loss, name);
      assert.equal(got.days, T);
      assert.equal(got.rows, T * SYMBOLS.length);
      assert.equal(c.method.lag, L);
      close(got.meanDifference, mean, 'mean difference');
      close(got.meanA! - got.meanB!, mean, 'meanA − meanB');
      close(got.longRunVariance, lrv, 'LRV');
      close(got.dmStatistic, dm, 'DM');
      close(got.pValue, 2 * (1 - normalCdf(Math.abs(dm))), 'p-value');
      close(got.mde80, POWER_80_Z * Math.sqrt(lrv / T), 'MDE');
      assert.equal(got.daysStillNeeded, Math.max(0, Math.ceil((lrv * POWER_80_Z ** 2) / mean ** 2 - T)));
      assert.ok(mean > 0, `${name}: v1 (a) has the higher loss`);
      assert.ok(got.interval!.low > 0 && got.interval!.low <= mean && mean <= got.interval!.high, JSON.stringify(got.interval));
      assert.equal(got.interval!.level, 0.95);
      assert.equal(got.verdict, 'B_BETTER');
      assert.equal(got.note, null);
    }
    assert.deepEqual(
      { block: c.method.block, seed: c.method.seed, replicates: c.method.replicates, level: c.method.level, blocks: c.method.blocks },
      { block: 'MONTH', seed: 20_200_316, replicates: 200, level: 0.95, blocks: 8 },
    );
    assert.equal(c.from, '2022-01-03T00:00:00.000Z');

    const swapped = await execute(server.url, CompareModelsDocument, { strategy: S, a: 'v2', b: 'v1' });
    assert.equal(swapped.data!.compareModels.brier.verdict, 'A_BETTER');
    assert.ok(Math.abs(swapped.data!.compareModels.brier.meanDifference! + c.brier.meanDifference!) < 1e-12);
  });

  test('a window of 15 days gives figures but no verdict, interval or days-needed, saying why; an empty window is days 0', async () => {
    const { data, errors } = await execute(server.url, CompareModelsDocument, {
      strategy: S,
      a: 'v1',
      b: 'v2',
      from: '2022-03-01T00:00:00Z',
      to: '2022-03-21T00:00:00Z',
    });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const b = data!.compareModels.brier;
    assert.equal(b.days, 15);
    assert.equal(b.verdict, 'NO_DIFFERENCE_YET');
    assert.deepEqual([b.interval, b.daysStillNeeded], [null, null]);
    assert.match(b.note!, /15 day\(s\)/);
    const empty = await execute(server.url, CompareModelsDocument, { strategy: S, a: 'v1', b: 'v2', source: 'stored' });
    assert.equal(empty.data!.compareModels.brier.days, 0, 'no stored-market rows were inserted');
    assert.equal(empty.data!.compareModels.brier.meanDifference, null);
  });

  test('client mistakes are client errors with codes', async () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ strategy: 'nope-1d', a: 'v1', b: 'v2' }, 'UNKNOWN_STRATEGY', /Unknown strategy/],
      [{ strategy: S, a: 'v1', b: 'v9' }, 'BAD_USER_INPUT', /version "v9" of direction-1d is not loaded/],
      [{ strategy: S, a: 'v2', b: 'v2' }, 'BAD_USER_INPUT', /a and b are both v2/],
      [{ strategy: S, a: 'v1', b: 'v2', from: '2022-05-01T00:00:00Z', to: '2022-04-01T00:00:00Z' }, 'BAD_USER_INPUT', /after/],
      [{ strategy: S, a: 'v1', b: 'v2', level: 1.5 }, 'BAD_USER_INPUT', /level/],
      [{ strategy: S, a: 'v 1', b: 'v2' }, 'BAD_USER_INPUT', /version must be a name/],
    ];
    for (const [variables, code, message] of cases) {
      const { data, errors } = await execute(server.url, CompareModelsDocument, variables as never);
      assert.equal(data ?? null, null, JSON.stringify(variables));
      assert.equal(codeOf(errors), code, JSON.stringify({ variables, errors }));
      assert.match(errors![0]!.message, message);
    }
  });
});
