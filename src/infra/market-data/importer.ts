import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Db } from '../db/index.js';
import { BarsRepository } from './bars-repository.js';
import type { Bar } from './market-data.js';
import type { QualityOptions } from './bar-quality.js';
import { readBarsCsvFile, type CsvFormat, type ParsedBarsFile, type RejectedRow } from './csv.js';

/**
 * Imports daily-bar CSV files into `market_bars`, file by file: each file is read (streamed, with a
 * cap on line length) and validated whole (daily files are a few hundred KB), then its good rows are
 * upserted in batches. Rows are held to the serving rules (bar-rules.ts), so nothing is stored that
 * the gateway could not serve. Bad rows and
 * unusable files are reported, never fatal; a database error is, and rejects with the error.
 *
 * Re-importing is safe: bars are keyed by (symbol, time), so a second run stores no duplicates and
 * reports every row as updated.
 */

/** What became of one file. `refused` is set when no row of it could be used. */
export interface FileReport {
  readonly file: string;
  readonly symbol?: string;
  readonly format?: CsvFormat;
  readonly rows: number;
  readonly inserted: number;
  readonly updated: number;
  readonly rejected: number;
  /** Stored bars per data-quality flag (bar-quality.ts); a bar with two flags counts under both. */
  readonly flagged: Readonly<Record<string, number>>;
  readonly refused?: string;
  readonly elapsedMs: number;
}

export interface ImportReport {
  readonly files: readonly FileReport[];
  readonly rows: number;
  readonly inserted: number;
  readonly updated: number;
  /** Every rejected row, in file and line order. */
  readonly rejections: readonly RejectedRow[];
  /** Stored bars per data-quality flag, over all files. */
  readonly flagged: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  /**
   * `complete`: every row of every file was stored. `partial`: some rows or files were rejected but
   * good rows were stored. `failed`: there were problems and nothing was stored.
   */
  readonly outcome: 'complete' | 'partial' | 'failed';
}

/** Sent after every stored batch, and once more when a file is finished (with `finished` set). */
export interface ImportProgress {
  readonly file: string;
  /** 0-based position of `file` among `fileCount` files. */
  readonly fileIndex: number;
  readonly fileCount: number;
  /** Share of this file's good rows stored so far, 0 to 1. */
  readonly fileFraction: number;
  /** Rows stored (inserted or updated) so far, over all files. */
  readonly rowsStored: number;
  readonly finished?: FileReport;
}

export interface ImportOptions {
  readonly onProgress?: (progress: ImportProgress) => void;
  /** Bars per upsert (one transaction each). */
  readonly batchSize?: number;
  /** Settings of the data-quality flags stored with the bars. */
  readonly quality?: QualityOptions;
}

const DEFAULT_BATCH_SIZE = 10_000;
/** Files written at once: a second overlaps PostgreSQL's work with our parsing (docs/decisions/hot-path-measurements.md). */
const WRITES_IN_FLIGHT = 2;

/**
 * Imports every given CSV file, and every `*.csv` under every given directory (recursively, sorted).
 * Rejects before touching the database if a path does not exist or no CSV file is found.
 */
export async function importFiles(db: Db, paths: readonly string[], options: ImportOptions = {}): Promise<ImportReport> {
  const { onProgress, batchSize = DEFAULT_BATCH_SIZE } = options;
  const started = performance.now();
  const files = await findCsvFiles(paths);
  const repository = new BarsRepository(db);
  const reports: FileReport[] = [];
  const rejections: RejectedRow[] = [];
  let rowsStored = 0;
  const inFlight: Array<Promise<unknown>> = [];
  let failure: unknown; // the first failed write stops the import, as a failed write always did
  // Reports, rejections and each file's final progress event, strictly in file order.
  let finished: Promise<void> = Promise.resolve();
  const finish = (
    work: Promise<{ report: FileReport; rejected: readonly RejectedRow[] }>,
    progress: (fraction: number, report: FileReport) => void,
  ) => {
    work.catch((error: unknown) => (failure ??= error)); // observed here; the chain below still fails with it
    finished = finished.then(async () => {
      const { report, rejected } = await work;
      reports.push(report);
      rejections.push(...rejected);
      progress(1, report);
    });
  };

  for (const [fileIndex, file] of files.entries()) {
    if (failure !== undefined) break;
    const fileStarted = performance.now();
    const progress = (fileFraction: number, finished?: FileReport) =>
      onProgress?.({ file, fileIndex, fileCount: files.length, fileFraction, rowsStored, ...(finished && { finished }) });

    let parsed: ParsedBarsFile;
    try {
      parsed = await readBarsCsvFile(file, { quality: options.quality });
    } catch (error) {
      finish(
        Promise.resolve({ report: refusedFile(file, `cannot read: ${(error as Error).message}`, fileStarted), rejected: [] }),
        progress,
      );
      continue;
    }
    if (!parsed.ok) {
      finish(Promise.resolve({ report: refusedFile(file, parsed.reason, fileStarted), rejected: [] }), progress);
      continue;
    }

    // Parsing is our CPU and writing is the database's: writes of earlier files overlap the parse of
    // this one, up to WRITES_IN_FLIGHT files at once (each its own transactions, on its own connection
    // where the engine has several). Files may finish writing out of order; `finish` reports them in order.
    if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift()!.catch(() => undefined);
    const write = (async () => {
      let inserted = 0;
      let updated = 0;
      for (let start = 0; start < parsed.bars.length; start += batchSize) {
        const batch = parsed.bars.slice(start, start + batchSize);
        const counts = await repository.upsert(batch);
        inserted += counts.inserted;
        updated += counts.updated;
        rowsStored += batch.length;
        progress((start + batch.length) / parsed.bars.length);
      }
      const report: FileReport = {
        file,
        symbol: parsed.symbol,
        format: parsed.format,
        rows: parsed.rows,
        inserted,
        updated,
        rejected: parsed.rejected.length,
        flagged: countFlags(parsed.bars),
        elapsedMs: performance.now() - fileStarted,
      };
      return { report, rejected: parsed.rejected };
    })();
    inFlight.push(write);
    finish(write, progress);
  }
  await finished;

  const sum = (key: 'rows' | 'inserted' | 'updated') => reports.reduce((total, r) => total + r[key], 0);
  const inserted = sum('inserted');
  const updated = sum('updated');
  const hasProblems = rejections.length > 0 || reports.some((r) => r.refused !== undefined);
  return {
    files: reports,
    rows: sum('rows'),
    inserted,
    updated,
    rejections,
    flagged: addCounts(reports.map((r) => r.flagged)),
    elapsedMs: performance.now() - started,
    outcome: !hasProblems ? 'complete' : inserted + updated > 0 ? 'partial' : 'failed',
  };
}

/**
 * The files to import, each once, in a stable order: given files as named (whatever their
 * extension), directories searched recursively for `*.csv`.
 */
export async function findCsvFiles(paths: readonly string[]): Promise<string[]> {
  const found = new Map<string, string>();
  for (const given of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(given)).isDirectory();
    } catch (error) {
      throw new Error(
        `cannot read ${given}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const files = isDirectory
      ? (await readdir(given, { recursive: true }))
          .filter((name) => name.toLowerCase().endsWith('.csv'))
          .sort()
          .map((name) => path.join(given, name))
      : [given];
    // Keyed by absolute path so a file named directly and found in a directory is imported once.
    for (const file of files) if (!found.has(path.resolve(file))) found.set(path.resolve(file), file);
  }
  if (found.size === 0) throw new Error(`no .csv files found in ${paths.join(', ')}`);
  return [...found.values()];
}

function refusedFile(file: string, reason: string, started: number): FileReport {
  return { file, rows: 0, inserted: 0, updated: 0, rejected: 0, flagged: {}, refused: reason, elapsedMs: performance.now() - started };
}

/** Bars per data-quality flag. */
export function countFlags(bars: readonly Bar[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const bar of bars) for (const flag of bar.quality ?? []) counts[flag] = (counts[flag] ?? 0) + 1;
  return counts;
}

function addCounts(all: ReadonlyArray<Readonly<Record<string, number>>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const counts of all) for (const [flag, n] of Object.entries(counts)) total[flag] = (total[flag] ?? 0) + n;
  return total;
}
