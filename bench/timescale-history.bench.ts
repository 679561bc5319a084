import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Database } from '../src/infra/db/index.js';
import {
  HistoryQueryService,
  HistoryReadRepository,
  historyRollupsOf,
  HistoryRepository,
  type HistoryRow,
} from '../src/modules/history/index.js';
import { recordedPrediction } from '../test/helpers/history-rows.js';
import { refreshHistoryAggregates } from '../test/helpers/migrations.js';
import { runStatement } from '../test/helpers/services.js';
import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { createScratchDatabase, openMigrated, type ScratchDatabase } from './lib/postgres.js';
import { median, percentile } from './lib/stats.js';

/**
 * Issue 23 §3: a year of 1-day confidenceHistory buckets on TimescaleDB (the continuous aggregates of
 * migration 0012, with the raw rows where they are not exact) against plain PostgreSQL (the trigger-kept
 * rollup tables) on the same server, same rows, same query, in the same run.
 *
 * Workload: as the history benchmark's query, ~100k predictions of one symbol over a year among 100k
 * rows of two other symbols, in two scratch databases migrated by the project's migrations, one with
 * the timescaledb extension. Calls go through HistoryQueryService in this process, alternating between
 * the two databases so drift on a shared machine hits both alike.
 *
 * TimescaleDB states measured:
 * - refreshed: the aggregates materialized (what their refresh policy leaves): the figure judged;
 * - one late row: a prediction recorded afterwards for an asOf in the middle of the year (a replay),
 *   so one day is read raw until the next refresh;
 * - never refreshed: right after migrating, before the policy's first run: every bucket raw.
 * Without the extension on the server only the plain figure is reported.
 */
const NAME = 'timescale-history';
const YEAR_MS = 365 * 86_400_000;
const YEAR_START = Date.UTC(2023, 0, 1);
const adminUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function historyRow(symbol: string, time: number, i: number): HistoryRow {
  return recordedPrediction({
    time: new Date(time),
    symbol,
    probability: 0.5 + 0.45 * Math.sin(i / 97) * Math.cos(i / 1_013),
    intervalLow: 100 - (i % 7),
    intervalHigh: 101 + (i % 5),
    featuresHash: `f${i.toString(16)}`,
  });
}

/** Why TimescaleDB cannot be used on the benchmark server, or undefined when it can. */
async function timescaleMissing(database: Database): Promise<string | undefined> {
  const { rows } = await sql<{ version: string | null; preloaded: string }>`
    select (select default_version from pg_available_extensions where name = 'timescaledb') as version,
           current_setting('shared_preload_libraries') as preloaded
  `.execute(database.db);
  if (!rows[0]?.version) return 'the timescaledb extension is not installed on the server';
  if (!rows[0].preloaded.split(',').some((name) => name.trim() === 'timescaledb')) return 'timescaledb is not in shared_preload_libraries';
  return undefined;
}

interface Engine {
  readonly name: string;
  readonly scratch: ScratchDatabase;
  readonly database: Database;
  readonly service: HistoryQueryService;
}

async function engine(name: string, timescale: boolean, rows: readonly HistoryRow[]): Promise<Engine> {
  const scratch = await createScratchDatabase(`history_${name}`);
  if (timescale) {
    const url = new URL(adminUrl);
    url.pathname = `/${scratch.name}`;
    await runStatement(url.toString(), 'create extension timescaledb');
  }
  const database = await openMigrated(scratch.url);
  if (database.timescale !== timescale)
    throw new Error(`${name}: expected timescale=${timescale}, the database says ${database.timescale}`);
  await new HistoryRepository(database.db).insertMany(rows);
  await sql`vacuum analyze prediction_history`.execute(database.db);
  const service = new HistoryQueryService({
    repository: new HistoryReadRepository(database.db, { rollups: historyRollupsOf(database) }),
    market: { listSymbols: async () => ['AAPL'] },
    maxSymbolsPerRequest: 200,
    servingMarket: 'stored',
  });
  return { name, scratch, database, service };
}

/** `runs` calls of each engine's query, alternating, after `warmup` of each; sorted samples (ms) per engine. */
async function alternate(engines: readonly Engine[], runs: number, warmup: number, query: (e: Engine) => Promise<number>) {
  const samples = engines.map((): number[] => []);
  for (let i = 0; i < warmup + runs; i++) {
    for (const [k, e] of engines.entries()) {
      const started = performance.now();
      const points = await query(e);
      const ms = performance.now() - started;
      if (points < 365) throw new Error(`${e.name}: expected ≥ 365 daily buckets, got ${points}`);
      if (i >= warmup) samples[k]!.push(ms);
    }
  }
  return samples.map((s) => s.sort((a, b) => a - b));
}

async function run(context: BenchContext) {
  const targetRows = context.smoke ? 5_000 : 100_000;
  const runs = context.smoke ? 10 : 200;
  const warmup = context.smoke ? 2 : 10;
  const step = Math.floor(YEAR_MS / targetRows);
  const rows: HistoryRow[] = [];
  for (let i = 0; i < targetRows; i++) rows.push(historyRow('AAPL', YEAR_START + i * step, i));
  for (const other of ['MSFT', 'NVDA']) for (let i = 0; i < targetRows / 2; i++) rows.push(historyRow(other, YEAR_START + i * step * 2, i));
  const from = new Date(YEAR_START);
  const to = new Date(YEAR_START + YEAR_MS);
  const year = (e: Engine) => e.service.confidenceHistory({ symbol: 'AAPL', from, to, bucket: '1 day' }).then((p) => p.length);
  const workload = `${targetRows.toLocaleString('en-US')} rows of one symbol over 1 year (+${targetRows.toLocaleString('en-US')} of 2 others)`;
  const p95 = (samples: number[]) => percentile(samples, 0.95);

  const engines: Engine[] = [];
  try {
    const plain = await engine('plain', false, rows);
    engines.push(plain);
    const missing = await timescaleMissing(plain.database);
    if (missing) {
      const [samples] = await alternate([plain], runs, warmup, year);
      context.log(`TimescaleDB not measured: ${missing}`);
      return {
        rows: [
          row({
            bench: NAME,
            workload,
            metric: 'confidenceHistory 1 day, plain PostgreSQL p95',
            figure: { value: p95(samples!), unit: 'ms' },
          }),
        ],
        notes: [`TimescaleDB not measured: ${missing}. Only the plain PostgreSQL figure is reported.`],
      };
    }
    const timescale = await engine('timescale', true, rows);
    engines.push(timescale);

    const [rawPlain, raw] = await alternate(engines, Math.ceil(runs / 4), warmup, year);
    await refreshHistoryAggregates(timescale.database);
    const [refreshedPlain, refreshed] = await alternate(engines, runs, warmup, year);
    const late = historyRow('AAPL', YEAR_START + 182 * 86_400_000 + 7_777, targetRows + 1);
    for (const e of engines) await new HistoryRepository(e.database.db).insertMany([late]);
    const [latePlain, lateTimescale] = await alternate(engines, runs, warmup, year);

    // The same answers, or the figures compare different work.
    const answers = await Promise.all(engines.map((e) => e.service.confidenceHistory({ symbol: 'AAPL', from, to, bucket: '1 day' })));
    const mismatch = answers[0]!.findIndex((p, i) => {
      const q = answers[1]![i];
      return (
        !q ||
        p.time.getTime() !== q.time.getTime() ||
        p.count !== q.count ||
        p.signal !== q.signal ||
        Math.abs(p.probability - q.probability) > 1e-12
      );
    });
    if (mismatch >= 0 || answers[0]!.length !== answers[1]!.length) throw new Error(`the engines answer differently (bucket ${mismatch})`);

    const target = { text: '≤ 1.2× plain', meets: (_: number, ratio: number | undefined) => ratio !== undefined && ratio <= 1.2 };
    const compared = (metric: string, figure: number[], baseline: number[], judged: boolean) =>
      row({
        bench: NAME,
        workload,
        metric,
        figure: { value: p95(figure), unit: 'ms' },
        baseline: { name: 'plain PostgreSQL rollups, same run', value: p95(baseline), unit: 'ms' },
        ...(judged && { target }),
      });
    const rowsOut: Row[] = [
      compared('confidenceHistory 1 day, TimescaleDB p95 (aggregates refreshed)', refreshed!, refreshedPlain!, true),
      compared('confidenceHistory 1 day, TimescaleDB p95 (one late row since the refresh)', lateTimescale!, latePlain!, true),
      compared('confidenceHistory 1 day, TimescaleDB p95 (never refreshed: all raw)', raw!, rawPlain!, false),
    ];
    context.log(
      `medians: refreshed ${median(refreshed!).toFixed(2)} ms vs plain ${median(refreshedPlain!).toFixed(2)} ms; ` +
        `one late row ${median(lateTimescale!).toFixed(2)} vs ${median(latePlain!).toFixed(2)} ms; all raw ${median(raw!).toFixed(2)} vs ${median(rawPlain!).toFixed(2)} ms`,
    );
    return {
      rows: rowsOut,
      notes: [
        `${runs} calls per engine and state (the never-refreshed state ${Math.ceil(runs / 4)}) after ${warmup} warm-ups, alternating plain and TimescaleDB call by call; p95 by nearest rank. Both tables VACUUM ANALYZEd after loading; the aggregates refreshed with refresh_continuous_aggregate over all of time, as their policy does. Answers checked equal before reporting.`,
      ],
    };
  } finally {
    for (const e of engines) {
      await e.database.close();
      await e.scratch.drop();
    }
  }
}

export default {
  name: NAME,
  title: 'a year of 1-day confidenceHistory buckets: TimescaleDB continuous aggregates vs plain PostgreSQL rollups',
  run,
} satisfies Bench;
