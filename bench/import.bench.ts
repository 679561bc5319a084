import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { parseBarsCsv } from '../src/infra/market-data/csv.js';
import { findCsvFiles, importFiles } from '../src/infra/market-data/importer.js';
import type { Bar } from '../src/infra/market-data/market-data.js';
import { row, type Bench, type BenchContext } from './lib/bench.js';
import { marketDataDir } from './lib/paths.js';
import { createScratchDatabase, openMigrated, timescaleOnServer } from './lib/postgres.js';
import { median } from './lib/stats.js';

/**
 * Import throughput on the real data set (61 stocks of Alpha Vantage daily bars): `importFiles`, the
 * code behind `npm run import`, into a fresh PostgreSQL scratch database, against a baseline of the
 * plainest fast write: the same parsed rows as multi-row `INSERT … VALUES` statements of 1,000 rows
 * through `pg`, no upsert, one transaction per 10,000 rows (the importer's batch), into another fresh
 * scratch database with the same migrated table (same constraints and primary key).
 *
 * When this PostgreSQL has TimescaleDB (installed and preloaded), importFiles also runs into a scratch
 * database with the extension, alternating with the plain one, and is reported against it (the issue's
 * target: at least 0.66× plain PostgreSQL's rows/s).
 *
 * The importer's figure covers reading, parsing, validating and writing (it overlaps the parse of one
 * file with the write of the previous one); the baseline's covers writing only, its rows parsed before
 * the clock starts. The parse-only rate is reported alongside so the two can be told apart.
 */
const NAME = 'import';
const STATEMENT_ROWS = 1_000;
const TRANSACTION_ROWS = 10_000;
const COLUMNS = ['symbol', 'time', 'open', 'high', 'low', 'close', 'adj_close', 'volume', 'source'] as const;

async function run(context: BenchContext) {
  const directory = marketDataDir();
  if (!existsSync(directory)) {
    throw new Error(`market data not found: looked for ${directory} (set SIBYL_MARKET_DATA to the folder holding daily_adjusted/)`);
  }
  const all = await findCsvFiles([directory]);
  const files = context.smoke ? all.slice(0, 3) : all;
  const repetitions = context.smoke ? 1 : 3;

  // Parse once, untimed for the baseline; timed on its own to show what parsing costs.
  const parseStarted = performance.now();
  const bars: Bar[] = [];
  for (const file of files) {
    const parsed = parseBarsCsv(await readFile(file, 'utf8'), { file });
    if (parsed.ok) bars.push(...parsed.bars);
  }
  const parseSeconds = (performance.now() - parseStarted) / 1000;

  const importer: number[] = [];
  const onTimescale: number[] = [];
  const plain: number[] = [];
  let stored = 0;
  let chunks = 0;
  const timescale = await timescaleOnServer();
  const engines = timescale.available ? (['postgres', 'timescaledb'] as const) : (['postgres'] as const);
  // Alternating importer (on each engine) and baseline, each into a database of its own, so drift hits all alike.
  for (let rep = 0; rep < repetitions; rep++) {
    for (const engine of engines) {
      const scratch = await createScratchDatabase(engine === 'postgres' ? 'import' : 'import_timescale', {
        timescale: engine === 'timescaledb',
      });
      try {
        const database = await openMigrated(scratch.url);
        try {
          const report = await importFiles(database.db, files);
          stored = report.inserted + report.updated;
          if (stored !== bars.length) throw new Error(`importFiles stored ${stored} rows, the parser found ${bars.length}`);
          (engine === 'postgres' ? importer : onTimescale).push(stored / (report.elapsedMs / 1000));
          context.log(`importFiles (${engine}): ${stored} rows in ${(report.elapsedMs / 1000).toFixed(2)} s`);
          if (engine === 'timescaledb') chunks = await chunkCount(scratch.url);
        } finally {
          await database.close();
        }
      } finally {
        await scratch.drop();
      }
    }
    {
      const scratch = await createScratchDatabase('insert');
      try {
        await (await openMigrated(scratch.url)).close(); // same table, constraints and key
        const seconds = await plainInsert(scratch.url, bars);
        plain.push(bars.length / seconds);
        context.log(`plain INSERT: ${bars.length} rows in ${seconds.toFixed(2)} s`);
      } finally {
        await scratch.drop();
      }
    }
  }

  const workload = `${files.length} real CSV files, ${stored.toLocaleString('en-US')} rows, fresh DB`;
  return {
    rows: [
      row({
        bench: NAME,
        workload,
        metric: 'importFiles',
        figure: { value: median(importer), unit: 'rows/s' },
        baseline: { name: 'plain INSERT', value: median(plain), unit: 'rows/s' },
        target: { text: '≥ 100k rows/s', meets: (figure) => figure >= 100_000 },
      }),
      ...(timescale.available
        ? [
            row({
              bench: NAME,
              workload,
              metric: 'importFiles on TimescaleDB',
              figure: { value: median(onTimescale), unit: 'rows/s' },
              baseline: { name: 'importFiles on plain PostgreSQL', value: median(importer), unit: 'rows/s' },
              target: { text: '≥ 0.66× plain PostgreSQL', meets: (_figure, ratio) => ratio !== undefined && ratio >= 0.66 },
            }),
          ]
        : []),
      row({
        bench: NAME,
        workload,
        metric: 'read + parse only',
        figure: { value: bars.length / parseSeconds, unit: 'rows/s' },
      }),
    ],
    notes: [
      `Data: ${directory} (${files.length} of ${all.length} files). Median of ${repetitions} repetition(s), importer and baseline alternating, each into a fresh scratch database on the local PostgreSQL (migrated by the project's migrations, so both tables have the same primary key and CHECK constraints).`,
      `Baseline: pg.Client, INSERT … VALUES of ${STATEMENT_ROWS} rows per statement (${COLUMNS.length} parameters per row), one transaction per ${TRANSACTION_ROWS} rows, no ON CONFLICT; rows parsed beforehand and not timed. importFiles is timed by its own report (elapsedMs), which includes reading and parsing the files.`,
      `Read + parse only (readFile + parseBarsCsv, one pass, cold JIT): ${parseSeconds.toFixed(2)} s for ${bars.length.toLocaleString('en-US')} rows.`,
      timescale.available
        ? `TimescaleDB ${timescale.version}: importFiles into a scratch database created with the extension (market_bars a hypertable, chunks as migration 0014 sizes them: ${chunks} chunks after the import), alternating with the plain PostgreSQL run on the same server.`
        : `TimescaleDB: not measured (${timescale.reason}).`,
    ],
  };
}

/** How many chunks the hypertable market_bars has. */
async function chunkCount(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>("select count(*)::int as n from show_chunks('market_bars')");
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

/** The baseline write; returns seconds. */
async function plainInsert(url: string, bars: readonly Bar[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    for (let start = 0; start < bars.length; start += TRANSACTION_ROWS) {
      await client.query('begin');
      const end = Math.min(bars.length, start + TRANSACTION_ROWS);
      for (let chunk = start; chunk < end; chunk += STATEMENT_ROWS) {
        const rows = bars.slice(chunk, Math.min(end, chunk + STATEMENT_ROWS));
        const values: unknown[] = [];
        const tuples = rows.map((bar, i) => {
          values.push(bar.symbol, bar.time, bar.open, bar.high, bar.low, bar.close, bar.adjClose, bar.volume, bar.source);
          return `(${COLUMNS.map((_, c) => `$${i * COLUMNS.length + c + 1}`).join(',')})`;
        });
        await client.query(`insert into market_bars (${COLUMNS.join(', ')}) values ${tuples.join(',')}`, values);
      }
      await client.query('commit');
    }
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

export default { name: NAME, title: 'importing the real CSVs with importFiles vs plain multi-row INSERTs', run } satisfies Bench;
