import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../src/infra/db/index.js';
import { createLogger } from '../src/infra/logger/logger.js';
import { ExplanationsRepository } from '../src/modules/explanations/index.js';
import { HistoryRepository, type HistoryRow } from '../src/modules/history/index.js';
import { MetricsRepository, MetricsService } from '../src/modules/metrics/index.js';
import { blockBootstrap } from '../src/domain/statistics.js';
import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { benchSymbols, createScratchDatabase, openMigrated } from './lib/postgres.js';
import { median } from './lib/stats.js';
import { recordedPrediction } from '../test/helpers/history-rows.js';
import { storeOutcomes } from '../test/helpers/outcomes.js';

/**
 * What the uncertainty of issue 19 costs. Workload: the realized history of the 1d strategy over the
 * real universe's size, 61 symbols × 756 trading days (3 years) = 46,116 resolved predictions of one
 * version, on the local PostgreSQL and on PGlite (the embedded default).
 *
 * 1. `modelMetrics` over all of it: figure = MetricsService.modelMetrics (the aggregate statement and the
 *    rows, in one repeatable-read transaction, then a 1,000-replicate month-block bootstrap); baseline =
 *    the aggregate statement alone, which was the whole of modelMetrics before estimates existed.
 * 2. historicalAccuracy evidence for a 50-symbol explanation request (its distinct confidence bands):
 *    figure = ExplanationsRepository.evidenceInBands (days and day sums per band); baseline = the
 *    per-bucket count it replaced (one group by over the model's rows).
 * Medians of sequential calls in this process.
 */
const NAME = 'model-metrics';
const DAYS = 756;
const SYMBOLS = 61;
const silent = createLogger({ level: 'silent', format: 'json' });

function historyRows(symbols: readonly string[], days: number): HistoryRow[] {
  const rows: HistoryRow[] = [];
  const start = Date.UTC(2018, 0, 2, 21);
  for (let d = 0, day = 0; d < days; day++) {
    const time = start + day * 86_400_000;
    const weekday = new Date(time).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    symbols.forEach((symbol, s) => {
      const p = 0.5 + 0.08 * Math.sin(d / 17 + s) * Math.cos(d / 113);
      rows.push(
        recordedPrediction({
          time: new Date(time),
          symbol,
          probability: p,
          signal: p > 0.52 ? 'BUY' : p < 0.5 ? 'SELL' : 'HOLD',
          featuresHash: `m${d}-${s}`,
        }),
      );
    });
    d++;
  }
  return rows;
}

async function seed(database: Database, rows: readonly HistoryRow[]): Promise<void> {
  const history = new HistoryRepository(database.db);
  for (let i = 0; i < rows.length; i += 5_000) await history.insertMany(rows.slice(i, i + 5_000));
  // Deterministic outcomes, a little informative: up more often when p is high.
  await storeOutcomes(database.db, {
    from: sql`prediction_history h`,
    realizedReturn: sql`(h.probability - 0.5) * 0.2 + sin(hashtext(h.features_hash)::float8) * 0.01`,
    covered: sql`cos(hashtext(h.features_hash)::float8) > -0.9`,
  });
  await sql`analyze prediction_outcomes`.execute(database.db);
}

async function timeIt(times: number, work: () => Promise<unknown>): Promise<number> {
  await work(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await work();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

async function measure(context: BenchContext, engine: string, database: Database, rowCount: number): Promise<Row[]> {
  const times = context.smoke ? 1 : 10;
  const repository = new MetricsRepository(database.db);
  const service = new MetricsService({
    repository: repository,
    activeVersion: () => 'v1',
    servingMarket: 'stored',
    trainingBaseRate: () => 0.52,
    replicates: 1_000,
  });
  const filter = { strategy: 'direction-1d', version: 'v1', source: 'stored' };
  const answer = await service.modelMetrics({ strategy: 'direction-1d' });
  if (answer.sampleSize !== rowCount || answer.estimates.length !== 7)
    throw new Error(`unexpected answer: ${answer.sampleSize} rows, ${answer.estimates.length} estimates (${answer.estimatesNote})`);
  const before = await timeIt(times, () => repository.realized(filter));
  const after = await timeIt(times, () => service.modelMetrics({ strategy: 'direction-1d' }));
  const rows = await repository.scored(filter, rowCount + 1);
  const read = await timeIt(times, () => repository.scored(filter, rowCount + 1));
  const bootstrap = await timeIt(times, async () => blockBootstrap(rows, 0.52, { replicates: 1_000 }));
  context.log(
    `${engine}: modelMetrics ${after.toFixed(1)} ms (aggregate alone ${before.toFixed(1)} ms; rows ${read.toFixed(1)} ms; bootstrap ${bootstrap.toFixed(1)} ms)`,
  );

  const explanations = new ExplanationsRepository(database.db, 'stored');
  // The bands of a 50-symbol request as the service forms them: ±0.025 around each confidence, in 1%
  // buckets, distinct (strategy, version, lo, hi) only; confidences spread as the stored ones are.
  const confidences = Array.from({ length: 50 }, (_, i) => 0.5 + 0.08 * Math.abs(Math.sin(i * 1.7)));
  const keys = new Set(
    confidences.map((c) => `${Math.max(0, Math.floor((c - 0.025) * 100))}:${Math.min(99, Math.floor((c + 0.025) * 100))}`),
  );
  const bands = [...keys].map((k) => ({
    strategy: 'direction-1d',
    version: 'v1',
    lo: Number(k.split(':')[0]),
    hi: Number(k.split(':')[1]),
  }));
  const evidence = await timeIt(times, () => explanations.evidenceInBands(bands));
  const buckets = await timeIt(times, () =>
    sql`
      select o.strategy, o.model_version as version, least(floor(o.confidence * 100)::int, 99) as bucket,
             count(*)::int as samples, (count(*) filter (where o.correct))::int as correct
      from prediction_outcomes o
      join unnest(${['direction-1d']}::text[], ${['v1']}::text[]) as m(strategy, version) on o.strategy = m.strategy and o.model_version = m.version
      group by 1, 2, 3
      order by 1, 2, 3
    `.execute(database.db),
  );
  context.log(
    `${engine}: evidence for ${bands.length} distinct bands of 50 predictions ${evidence.toFixed(1)} ms (bucket counts ${buckets.toFixed(1)} ms)`,
  );

  const workload = `${rowCount.toLocaleString('en-US')} resolved 1d predictions (${SYMBOLS} symbols × ${DAYS} days), ${engine}`;
  return [
    row({
      bench: NAME,
      workload,
      metric: 'modelMetrics with estimates (1,000 replicates)',
      figure: { value: after, unit: 'ms' },
      baseline: { name: 'aggregate statement alone (modelMetrics before)', value: before, unit: 'ms' },
    }),
    row({ bench: NAME, workload, metric: 'reading the rows for estimates', figure: { value: read, unit: 'ms' } }),
    row({ bench: NAME, workload, metric: 'month-block bootstrap (in process)', figure: { value: bootstrap, unit: 'ms' } }),
    row({
      bench: NAME,
      workload,
      metric: `historicalAccuracy evidence, 50 predictions (${bands.length} distinct bands)`,
      figure: { value: evidence, unit: 'ms' },
      baseline: { name: 'per-bucket counts it replaced', value: buckets, unit: 'ms' },
    }),
  ];
}

async function run(context: BenchContext) {
  const symbols = benchSymbols(SYMBOLS);
  const days = context.smoke ? 130 : DAYS;
  const rows = historyRows(symbols, days);
  const out: Row[] = [];

  const scratch = await createScratchDatabase('model_metrics');
  try {
    const database = await openMigrated(scratch.url);
    try {
      await seed(database, rows);
      out.push(...(await measure(context, 'PostgreSQL', database, rows.length)));
    } finally {
      await database.close();
    }
  } finally {
    await scratch.drop();
  }

  const dir = tempDir('sibyl-bench-metrics-');
  try {
    const database = await openDatabase({ kind: 'pglite', dataDir: path.join(dir.dir, 'pglite') }, silent);
    try {
      await migrateToLatest(database.db);
      await seed(database, rows);
      out.push(...(await measure(context, 'PGlite', database, rows.length)));
    } finally {
      await database.close();
    }
  } finally {
    dir.remove();
  }
  return {
    rows: out,
    notes: [
      'Medians of 10 sequential calls after one warm-up, in this process (no HTTP). The bootstrap figure is blockBootstrap alone over rows already read.',
    ],
  };
}

export default { name: NAME, title: 'cost of metric estimates (modelMetrics) and of historicalAccuracy day evidence', run } satisfies Bench;
