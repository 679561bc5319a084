import path from 'node:path';
import { cliConfig, type CliIo, parseCli, positiveNumberOption, runAsCommand, USAGE_ERROR } from './args.js';
import { alignedRows, liveBar } from './terminal.js';
import { runDatabaseJob, type ProgressDisplay } from './database-job.js';
import { QUALITY_DEFAULTS } from '../infra/market-data/bar-quality.js';
import { findCsvFiles, importFiles, type FileReport, type ImportProgress, type ImportReport } from '../infra/market-data/importer.js';
import { barsOf } from '../infra/response-cache/inputs.js';

/**
 * `npm run import -- <files|dirs…>`: stores daily bars from CSV files in the configured database
 * (PGlite in DATA_DIR, or DATABASE_URL), migrating it first. Progress goes to stderr, the summary to
 * stdout. Exit code: 0 everything imported, 2 some rows or files rejected but good rows stored,
 * 1 nothing imported, no files given, bad configuration or a database error (an unknown flag also
 * exits 2, with the usage on stderr and nothing imported).
 */

const USAGE = `usage: npm run import -- <file.csv | directory>...

Imports daily bars into the configured database (DATABASE_URL, or the embedded one in DATA_DIR).
Directories are searched recursively for *.csv. Understood layouts, told apart by the header:
  Alpha Vantage daily adjusted  timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient
  Yahoo                         Date,Open,High,Low,Close,Adj Close,Volume
The symbol comes from the file name: DA-<SYMBOL>-T-<YYYY-MM-DD>.csv or <SYMBOL>.csv.
Rows the gateway could not serve are rejected and listed with file:line and reason (see README,
"Market data": prices in [1e-6, 1e9], volume in [0, 1e12], adjusted/close within 1e4x, at most 10x
from one trading day to the next, no date after the next weekday, lines at most 1024 characters).
Suspect but possible bars are stored with data-quality flags (flat price, zero volume, off the NYSE
calendar, missing sessions before it, a move beyond N x recent volatility) and counted in the summary;
list them with npm run quality (see docs/decisions/data-quality.md).
Re-importing a file updates its bars in place (no duplicates).

Options:
  --move-sigmas N   flag a move beyond N x the recent volatility (default ${QUALITY_DEFAULTS.moveSigmas})
`;

const EXIT_CODES = { complete: 0, partial: 2, failed: 1 } as const;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'import', usage: USAGE, allowPositionals: true, options: { 'move-sigmas': { type: 'string' } } }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const moveSigmas = positiveNumberOption(parsed.values['move-sigmas']);
  if (moveSigmas === 'invalid') {
    io.err(`import: --move-sigmas must be a number above 0\n\n${USAGE}`);
    return USAGE_ERROR;
  }
  const args = parsed.positionals;
  if (args.length === 0) {
    io.err(USAGE);
    return 1;
  }
  const config = cliConfig(io);
  if (!config) return 1;
  let files: string[];
  try {
    // Paths first, so a typo fails before the database is opened or migrated.
    files = await findCsvFiles(args);
  } catch (error) {
    io.err(`${(error as Error).message}\n`);
    return 1;
  }
  return runDatabaseJob(config, io, {
    name: 'import',
    display: { bar: progressBar, lines: () => progressLines(io) },
    async run(db, { onProgress }) {
      const report = await importFiles(db, files, { onProgress, quality: { moveSigmas } });
      const written = report.files.filter((f) => f.symbol !== undefined && f.inserted + f.updated > 0).map((f) => barsOf(f.symbol!));
      return { summary: formatSummary(report), exitCode: EXIT_CODES[report.outcome], changed: [...new Set(written)] };
    },
  });
}

/** A live bar for people at a terminal; the per-file outcomes are in the summary. */
function progressBar(): ProgressDisplay<ImportProgress> {
  const bar = liveBar<{ files: string; rows: number; rate: number; file: string }>(
    '{bar} {percentage}% | {files} files | {rows} rows | {rate} rows/s | {file}',
  );
  const started = Date.now();
  return {
    update(p) {
      bar.update(p.fileIndex + p.fileFraction, p.fileCount, {
        files: `${p.fileIndex + (p.finished ? 1 : 0)}/${p.fileCount}`,
        rows: p.rowsStored,
        rate: Math.round(p.rowsStored / Math.max((Date.now() - started) / 1000, 0.001)),
        file: path.basename(p.file),
      });
    },
    stop: () => bar.stop(),
  };
}

/** One line per finished file, for logs and pipes where a redrawn bar would be noise. */
function progressLines(io: CliIo): ProgressDisplay<ImportProgress> {
  return {
    update(p) {
      if (!p.finished) return;
      const position = `[${String(p.fileIndex + 1).padStart(String(p.fileCount).length)}/${p.fileCount}]`;
      io.err(`${position} ${describeFile(p.finished)}\n`);
    },
    stop() {},
  };
}

function describeFile(r: FileReport): string {
  if (r.refused !== undefined) return `${r.file}: refused: ${r.refused}`;
  return (
    `${r.file}: ${r.symbol} (${r.format}) ${r.rows} rows, ${r.inserted} inserted, ${r.updated} updated, ` +
    `${r.rejected} rejected in ${(r.elapsedMs / 1000).toFixed(2)} s`
  );
}

function formatSummary(report: ImportReport): string {
  const seconds = report.elapsedMs / 1000;
  const table = [
    ['files', 'rows read', 'inserted', 'updated', 'rejected', 'elapsed', 'rows/s'],
    [
      String(report.files.length),
      String(report.rows),
      String(report.inserted),
      String(report.updated),
      String(report.rejections.length),
      `${seconds.toFixed(2)} s`,
      String(Math.round(report.rows / Math.max(seconds, 0.001))),
    ],
  ];
  const lines = alignedRows(table);
  const flagged = Object.entries(report.flagged).sort(([a], [b]) => a.localeCompare(b));
  if (flagged.length > 0) lines.push('', `flagged (stored, listed by npm run quality): ${flagged.map(([f, n]) => `${f} ${n}`).join(', ')}`);

  const refused = report.files.filter((f) => f.refused !== undefined);
  if (refused.length > 0) {
    lines.push('', `${refused.length} file(s) refused:`, ...refused.map((f) => `  ${f.file}: ${f.refused}`));
  }
  // Every rejected row, however many: each one is a bar the gateway will not serve, and the operator
  // needs its file:line to fix or explain it.
  const { rejections } = report;
  if (rejections.length > 0) {
    lines.push('', `${rejections.length} row(s) rejected:`, ...rejections.map((r) => `  ${r.file}:${r.line}: ${r.reason}`));
  }
  return `${lines.join('\n')}\n`;
}

await runAsCommand(import.meta.url, 'import', main);
