import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createLogger } from '../src/infra/logger/logger.js';
import {
  HistoryQueryService,
  HistoryReadRepository,
  historyRollupsOf,
  HistoryRepository,
  HistoryWriter,
  type HistoryRow,
} from '../src/modules/history/index.js';
import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { sequentialClient } from './lib/load.js';
import { sharedGateway } from './lib/gateways.js';
import { createScratchDatabase, openMigrated, timescaleOnServer } from './lib/postgres.js';
import { startGateway } from './lib/process.js';
import { recordedPrediction } from '../test/helpers/history-rows.js';
import { median, percentile } from './lib/stats.js';

/**
 * Bench issue §6, prediction history on the local PostgreSQL:
 *
 * 1. Bulk ingest: the same rows written (a) by HistoryRepository.insertMany (unnest of column arrays,
 *    ON CONFLICT DO NOTHING), (b) through HistoryWriter (record() + flush(), the path every served
 *    prediction takes), and (c) as a baseline by plain multi-row INSERT … VALUES of 1,000 rows per
 *    statement through pg, no ON CONFLICT, one transaction per 10,000 rows — each into a fresh scratch
 *    database migrated by the project's migrations (same table, key, CHECKs and indexes). When this
 *    PostgreSQL has TimescaleDB (installed and preloaded), (a) runs once more into a database with the
 *    extension (a hypertable), reported against (a) on plain PostgreSQL (the issue's target: within 1.5×).
 * 2. Bucketed one-year query: ~100k predictions of one symbol spread over a year (one per 315 s) among
 *    100k rows of two other symbols; confidenceHistory with bucket "1 day" over the whole year, p95 of
 *    sequential calls (a) through the gateway over HTTP (GraphQL, a separate process), (b) through
 *    HistoryQueryService in this process (which reads the hourly rollup of migration 0005 for whole-hour
 *    buckets), against the baseline of the same aggregation over the raw table, sent by pg directly.
 *    The unbucketed scan (every row of the year, no aggregation) is reported beside the hourly variant.
 */
const NAME = 'history';
const STATEMENT_ROWS = 1_000;
const TRANSACTION_ROWS = 10_000;
const YEAR_MS = 365 * 86_400_000;
const YEAR_START = Date.UTC(2023, 0, 1);
const COLUMNS = [
  'time',
  'symbol',
  'strategy',
  'model_version',
  'market_source',
  'horizon',
  'probability',
  'confidence',
  'signal',
  'expected_return',
  'interval_level',
  'interval_low',
  'interval_high',
  'features_hash',
] as const;

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

/** `symbols` × `perSymbol` rows, one minute apart. */
function ingestRows(symbols: number, perSymbol: number): HistoryRow[] {
  const rows: HistoryRow[] = [];
  for (let s = 0; s < symbols; s++)
    for (let i = 0; i < perSymbol; i++) rows.push(historyRow(`S${String(s).padStart(3, '0')}`, YEAR_START + i * 60_000, i));
  return rows;
}

async function plainInsert(url: string, rows: readonly HistoryRow[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    for (let start = 0; start < rows.length; start += TRANSACTION_ROWS) {
      await client.query('begin');
      const end = Math.min(rows.length, start + TRANSACTION_ROWS);
      for (let chunk = start; chunk < end; chunk += STATEMENT_ROWS) {
        const values: unknown[] = [];
        const tuples = rows.slice(chunk, Math.min(end, chunk + STATEMENT_ROWS)).map((r, i) => {
          values.push(
            r.time,
            r.symbol,
            r.strategy,
            r.modelVersion,
            r.marketSource,
            r.horizon,
            r.probability,
            r.confidence,
            r.signal,
            r.expectedReturn,
            r.intervalLevel,
            r.intervalLow,
            r.intervalHigh,
            r.featuresHash,
          );
          return `(${COLUMNS.map((_, c) => `$${i * COLUMNS.length + c + 1}`).join(',')})`;
        });
        await client.query(`insert into prediction_history (${COLUMNS.join(', ')}) values ${tuples.join(',')}`, values);
      }
      await client.query('commit');
    }
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

async function countRows(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('select count(*) as n from prediction_history')).rows[0]!.n);
  } finally {
    await client.end();
  }
}

async function ingest(context: BenchContext): Promise<{ rows: Row[]; notes: string[] }> {
  const data = context.smoke ? ingestRows(5, 1_000) : ingestRows(20, 10_000);
  const repetitions = context.smoke ? 1 : 3;
  const silent = createLogger({ level: 'silent', format: 'json' });
  const rates = { repository: [] as number[], writer: [] as number[], plain: [] as number[], timescale: [] as number[] };
  const timescale = await timescaleOnServer();
  const kinds = ['repository', 'writer', 'plain', ...(timescale.available ? (['timescale'] as const) : [])] as const;
  for (let rep = 0; rep < repetitions; rep++) {
    for (const kind of kinds) {
      const scratch = await createScratchDatabase(`history_${kind}`, { timescale: kind === 'timescale' });
      try {
        const database = await openMigrated(scratch.url);
        let seconds: number;
        try {
          if (kind === 'repository' || kind === 'timescale') {
            const started = performance.now();
            const inserted = await new HistoryRepository(database.db).insertMany(data);
            seconds = (performance.now() - started) / 1000;
            if (inserted !== data.length) throw new Error(`insertMany stored ${inserted} of ${data.length} rows`);
          } else if (kind === 'writer') {
            const spill = tempDir('sibyl-bench-spill-');
            try {
              const writer = await HistoryWriter.open({
                repository: new HistoryRepository(database.db),
                logger: silent,
                spillDir: spill.dir,
                flushIntervalMs: 60_000,
                maxBufferRows: data.length,
                maxBatchRows: Math.min(TRANSACTION_ROWS, data.length),
                recentKeys: data.length,
              });
              const started = performance.now();
              const recorded = writer.record(data);
              while (writer.state.bufferedRows > 0) if (!(await writer.flush())) throw new Error(`flush failed: ${writer.state.lastError}`);
              seconds = (performance.now() - started) / 1000;
              await writer.close();
              if (recorded.accepted !== data.length || writer.state.writtenRows !== data.length)
                throw new Error(`writer wrote ${writer.state.writtenRows} of ${data.length} rows`);
            } finally {
              spill.remove();
            }
          } else {
            seconds = await plainInsert(scratch.url, data);
            const stored = await countRows(scratch.url);
            if (stored !== data.length) throw new Error(`plain INSERT stored ${stored} of ${data.length} rows`);
          }
        } finally {
          await database.close();
        }
        rates[kind].push(data.length / seconds);
        context.log(`${kind}: ${data.length} rows in ${seconds.toFixed(2)} s`);
      } finally {
        await scratch.drop();
      }
    }
  }
  const workload = `${data.length.toLocaleString('en-US')} history rows, fresh DB`;
  const baseline = { name: 'plain INSERT', value: median(rates.plain), unit: 'rows/s' };
  const target = { text: '≥ 50k rows/s', meets: (figure: number) => figure >= 50_000 };
  return {
    rows: [
      row({
        bench: NAME,
        workload,
        metric: 'HistoryRepository.insertMany',
        figure: { value: median(rates.repository), unit: 'rows/s' },
        baseline,
        target,
      }),
      row({
        bench: NAME,
        workload,
        metric: 'HistoryWriter record+flush',
        figure: { value: median(rates.writer), unit: 'rows/s' },
        baseline,
        target,
      }),
      ...(timescale.available
        ? [
            row({
              bench: NAME,
              workload,
              metric: 'insertMany on TimescaleDB',
              figure: { value: median(rates.timescale), unit: 'rows/s' },
              baseline: { name: 'insertMany on plain PostgreSQL', value: median(rates.repository), unit: 'rows/s' },
              target: {
                text: '≥ 0.67× plain PostgreSQL (within 1.5×)',
                meets: (_figure, ratio) => ratio !== undefined && ratio >= 1 / 1.5,
              },
            }),
          ]
        : []),
    ],
    notes: [
      timescale.available
        ? `TimescaleDB ${timescale.version}: insertMany into a scratch database created with the extension (prediction_history a hypertable with the continuous aggregates and compression settings of 0005/0009, chunks as 0014 sizes them), in the same alternation.`
        : `TimescaleDB: not measured (${timescale.reason}).`,
      `Ingest: median of ${repetitions} repetition(s), each path into its own fresh scratch database (migrated: same unique key, CHECKs and the indexes of 0003/0004). insertMany binds one array per column per 10,000-row statement (ON CONFLICT DO NOTHING); HistoryWriter batches 10,000 rows per write here (its default is 2,000, for latency); the baseline sends INSERT … VALUES of ${STATEMENT_ROWS} rows (${COLUMNS.length} parameters per row: the columns without defaults), one transaction per ${TRANSACTION_ROWS} rows, no ON CONFLICT.`,
    ],
  };
}

/** The aggregation over the raw table (what confidenceHistory sends for buckets that are not whole hours), for the pg baseline. */
const BUCKETED_SQL = `
  select date_bin(make_interval(secs => $1::float8), time, timestamptz '2000-01-01 00:00:00+00') as time,
         avg(probability) as probability, avg(confidence) as confidence,
         min(confidence) as min, max(confidence) as max, count(*)::int as count,
         (array_agg(signal order by time desc))[1] as signal
  from prediction_history
  where symbol = $2 and strategy = $3 and time >= $4::timestamptz and time <= $5::timestamptz
  group by 1 order by 1`;
const SCAN_SQL = `select time, probability, confidence, signal from prediction_history
  where symbol = $1 and strategy = $2 and time >= $3::timestamptz and time <= $4::timestamptz order by time`;

async function timeEach(count: number, warmup: number, once: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await once();
    samples.push(performance.now() - started);
  }
  return samples.sort((a, b) => a - b);
}

async function query(context: BenchContext): Promise<{ rows: Row[]; notes: string[] }> {
  const targetRows = context.smoke ? 5_000 : 100_000;
  const runs = context.smoke ? 10 : 200;
  const step = Math.floor(YEAR_MS / targetRows);
  // A smoke run borrows the runner's gateway and its database (the rows below are of symbols it does
  // not serve); otherwise a scratch database of our own and a gateway on it.
  const borrowed = sharedGateway(context.shared, 'default');
  const scratch = borrowed ? undefined : await createScratchDatabase('history_query');
  const databaseUrl = borrowed?.databaseUrl ?? scratch!.url;
  try {
    const database = await openMigrated(databaseUrl);
    try {
      const writes = new HistoryRepository(database.db);
      const rows: HistoryRow[] = [];
      for (let i = 0; i < targetRows; i++) rows.push(historyRow('AAPL', YEAR_START + i * step, i));
      for (const other of ['MSFT', 'NVDA'])
        for (let i = 0; i < targetRows / 2; i++) rows.push(historyRow(other, YEAR_START + i * step * 2, i));
      await writes.insertMany(rows);
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query('vacuum analyze prediction_history');
      const from = new Date(YEAR_START);
      const to = new Date(YEAR_START + YEAR_MS);
      const service = new HistoryQueryService({
        repository: new HistoryReadRepository(database.db, { rollups: historyRollupsOf(database) }),
        market: { listSymbols: async () => ['AAPL'] },
        maxSymbolsPerRequest: 200,
        servingMarket: 'stored',
      });
      let points = 0;
      const viaService = await timeEach(runs, 10, async () => {
        points = (await service.confidenceHistory({ symbol: 'AAPL', from, to, bucket: '1 day' })).length;
      });
      if (points < 365) throw new Error(`expected ≥ 365 daily buckets, got ${points}`);
      const hourly = await timeEach(
        Math.ceil(runs / 4),
        3,
        async () => void (await service.confidenceHistory({ symbol: 'AAPL', from, to, bucket: '1 hour' })),
      );
      const rawSql = await timeEach(
        runs,
        10,
        async () => void (await client.query(BUCKETED_SQL, [86_400, 'AAPL', 'direction-1d', from, to])),
      );
      const scan = await timeEach(
        Math.ceil(runs / 4),
        3,
        async () => void (await client.query(SCAN_SQL, ['AAPL', 'direction-1d', from, to])),
      );
      await client.end();

      // Through the whole gateway, over HTTP, from this process to a gateway process on the same database.
      const gateway =
        borrowed?.gateway ??
        (await startGateway({ env: { DATABASE_URL: databaseUrl, OUTCOMES_INTERVAL_MS: '0', SYNTHETIC_TICK_MS: '0' } }));
      let viaGraphql: number[];
      try {
        const body = JSON.stringify({
          query:
            'query($from: DateTimeISO, $to: DateTimeISO) { confidenceHistory(symbol: "AAPL", from: $from, to: $to, bucket: "1 day") { time probability confidence min max count signal } }',
          variables: { from: from.toISOString(), to: to.toISOString() },
        });
        const http = sequentialClient(gateway.url, { path: '/graphql', body }, (text) => {
          if (!text.includes('"confidenceHistory"') || text.includes('"errors"'))
            throw new Error(`unexpected answer: ${text.slice(0, 300)}`);
        });
        await http.timed(10, false);
        await http.timed(runs);
        viaGraphql = http.samples.slice().sort((a, b) => a - b);
        http.close();
      } finally {
        await gateway.stop();
      }

      const workload = `${targetRows.toLocaleString('en-US')} rows of one symbol over 1 year (+${targetRows.toLocaleString('en-US')} of 2 others)`;
      const p95 = (samples: number[]) => percentile(samples, 0.95);
      const baseline = { name: 'raw-table SQL via pg', value: p95(rawSql), unit: 'ms' };
      const target = { text: '≤ 20 ms', meets: (figure: number) => figure <= 20 };
      return {
        rows: [
          row({
            bench: NAME,
            workload,
            metric: 'confidenceHistory 1 day, GraphQL p95',
            figure: { value: p95(viaGraphql), unit: 'ms' },
            baseline,
            target,
          }),
          row({
            bench: NAME,
            workload,
            metric: 'confidenceHistory 1 day, service p95',
            figure: { value: p95(viaService), unit: 'ms' },
            baseline,
            target,
          }),
          row({
            bench: NAME,
            workload,
            metric: 'confidenceHistory 1 hour, service p95',
            figure: { value: p95(hourly), unit: 'ms' },
            baseline: { name: 'unbucketed scan', value: p95(scan), unit: 'ms' },
          }),
        ],
        notes: [
          `Query: ${runs} sequential runs after 10 warm-ups each (the hourly and scan variants ${Math.ceil(runs / 4)}); p95 by nearest rank. The table is VACUUM ANALYZEd after loading. The GraphQL figure is HTTP round trips to a gateway process (NODE_ENV=production, JSON logs) on the same scratch database; the service figure is HistoryQueryService in the benchmark process over a Kysely pool; the baseline sends the same aggregation over the raw table (no rollup) with pg.Client. Plain PostgreSQL, no TimescaleDB (date_bin over the hourly rollup plus the partial hours at the range's ends).`,
          `Unbucketed scan (every one of the year's ${targetRows.toLocaleString('en-US')} rows of the symbol to the client, no aggregation) p95: ${p95(scan).toFixed(1)} ms; hourly buckets return ${Math.min(8_760, targetRows)} points at most.`,
        ],
      };
    } finally {
      await database.close();
    }
  } finally {
    await scratch?.drop();
  }
}

async function run(context: BenchContext) {
  const a = await ingest(context);
  const b = await query(context);
  return { rows: [...a.rows, ...b.rows], notes: [...a.notes, ...b.notes] };
}

export default { name: NAME, title: 'history: bulk ingest vs plain INSERT; bucketed one-year confidenceHistory p95', run } satisfies Bench;
