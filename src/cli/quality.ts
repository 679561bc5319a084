import path from 'node:path';
import { cliConfig, type CliIo, parseCli, positiveNumberOption, runAsCommand, USAGE_ERROR } from './args.js';
import { openCliDatabase } from './database-job.js';
import { alignedRows } from './terminal.js';
import { migrateToLatest } from '../infra/db/index.js';
import {
  QUALITY_DEFAULTS,
  QUALITY_POLICY,
  QUALITY_REASONS,
  assessSeries,
  describeFlag,
  isQualityReason,
} from '../infra/market-data/bar-quality.js';
import { BarsRepository, type FlaggedFilter } from '../infra/market-data/bars-repository.js';
import { readBarsCsvFile } from '../infra/market-data/csv.js';
import { findCsvFiles } from '../infra/market-data/importer.js';
import { SYMBOL_PATTERN, type Bar } from '../infra/market-data/market-data.js';

/**
 * `npm run quality`: lists bars with data-quality flags (bar-quality.ts) and counts them per flag, either
 * as stored in the configured database or, given CSV files or directories, as an import would flag them
 * (nothing is stored). Listing goes to stdout, progress to stderr. Exit code: 0 done (flags found or
 * not), 2 a bad argument (with the usage), 1 unreadable files or a database error.
 */

const USAGE = `usage: npm run quality -- [options] [file.csv | directory]...

Lists bars with data-quality flags and a summary per flag. Without files: the bars stored in the configured
database (DATABASE_URL, or the embedded one in DATA_DIR). With CSV files or directories: checks them as
npm run import would (same layouts and rules) without storing anything.

Flags (docs/decisions/data-quality.md; "excluded" = left out of training / realized outcomes):
${QUALITY_REASONS.map((r) => `  ${r.padEnd(13)} training ${QUALITY_POLICY[r].training ? 'excluded' : 'kept'}, outcomes ${QUALITY_POLICY[r].outcomes ? 'excluded' : 'kept'}`).join('\n')}

Options:
  --symbol SYM        only this symbol (repeatable)
  --reason FLAG       only bars with this flag (repeatable)
  --from YYYY-MM-DD   only bars on or after this date
  --to YYYY-MM-DD     only bars on or before this date
  --move-sigmas N     with files: flag moves beyond N x the recent volatility (default ${QUALITY_DEFAULTS.moveSigmas})
  --limit N           list at most N bars (default 1000); the summary counts every match
`;

const OPTIONS = {
  symbol: { type: 'string', multiple: true },
  reason: { type: 'string', multiple: true },
  from: { type: 'string' },
  to: { type: 'string' },
  'move-sigmas': { type: 'string' },
  limit: { type: 'string' },
} as const;

/** One listed bar: its flags and, when the series is at hand (files), why each was given. */
interface FlaggedRow {
  readonly bar: Bar;
  readonly detail?: string;
}

const PAGE_ROWS = 1_000;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'quality', usage: USAGE, allowPositionals: true, options: OPTIONS }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const { values, positionals } = parsed;
  const problem = (message: string) => {
    io.err(`quality: ${message}\n\n${USAGE}`);
    return USAGE_ERROR;
  };
  const symbols = values.symbol ?? [];
  const badSymbol = symbols.find((s) => !SYMBOL_PATTERN.test(s));
  if (badSymbol !== undefined) return problem(`--symbol ${JSON.stringify(badSymbol)} is not a ticker (like AAPL or BRK.B)`);
  const reasons = values.reason ?? [];
  const badReason = reasons.find((r) => !isQualityReason(r));
  if (badReason !== undefined) return problem(`--reason ${JSON.stringify(badReason)} is not a flag; one of ${QUALITY_REASONS.join(', ')}`);
  const from = values.from === undefined ? undefined : parseDay(values.from);
  if (from === null) return problem(`--from ${JSON.stringify(values.from)} is not a date (YYYY-MM-DD)`);
  const to = values.to === undefined ? undefined : parseDay(values.to);
  if (to === null) return problem(`--to ${JSON.stringify(values.to)} is not a date (YYYY-MM-DD)`);
  if (from && to && from > to) return problem(`--from ${values.from} is after --to ${values.to}`);
  const moveSigmas = positiveNumberOption(values['move-sigmas']);
  if (moveSigmas === 'invalid') return problem('--move-sigmas must be a number above 0');
  if (moveSigmas !== undefined && positionals.length === 0)
    return problem('--move-sigmas applies to files only (stored flags were set on import)');
  const limit = positiveNumberOption(values.limit, 1_000_000);
  if (limit === 'invalid' || (limit !== undefined && !Number.isInteger(limit))) return problem('--limit must be a whole number above 0');

  const filter: FlaggedFilter = { symbols, reasons, ...(from && { from }), ...(to && { to }) };
  const rows = positionals.length > 0 ? await fromFiles(io, positionals, filter, moveSigmas) : await fromDatabase(io, filter);
  if (typeof rows === 'number') return rows;
  io.out(formatReport(rows, limit ?? 1_000));
  return 0;
}

async function fromFiles(
  io: CliIo,
  paths: readonly string[],
  filter: FlaggedFilter,
  moveSigmas: number | undefined,
): Promise<FlaggedRow[] | number> {
  let files: string[];
  try {
    files = await findCsvFiles(paths);
  } catch (error) {
    io.err(`quality: ${(error as Error).message}\n`);
    return 1;
  }
  const rows: FlaggedRow[] = [];
  let failed = 0;
  for (const [index, file] of files.entries()) {
    const parsed = await readBarsCsvFile(file, { quality: { moveSigmas } }).catch((error: unknown) => ({
      ok: false as const,
      reason: `cannot read: ${(error as Error).message}`,
    }));
    const position = `[${String(index + 1).padStart(String(files.length).length)}/${files.length}]`;
    if (!parsed.ok) {
      failed++;
      io.err(`${position} ${file}: refused: ${parsed.reason}\n`);
      continue;
    }
    const series = [...parsed.bars].sort((a, b) => a.time.getTime() - b.time.getTime());
    // The flags are the file's own (set while parsing); assessing again gives each its neighbour for the detail.
    const flags = assessSeries(series, { moveSigmas });
    let found = 0;
    series.forEach((bar, i) => {
      if (flags[i]!.length === 0 || !matches(bar, filter)) return;
      found++;
      rows.push({ bar, detail: flags[i]!.map((flag) => describeFlag(flag, bar, series[i - 1])).join('; ') });
    });
    io.err(`${position} ${path.basename(file)}: ${parsed.symbol} ${parsed.bars.length} bars, ${found} flagged\n`);
  }
  return failed === files.length ? 1 : rows;
}

async function fromDatabase(io: CliIo, filter: FlaggedFilter): Promise<FlaggedRow[] | number> {
  const config = cliConfig(io);
  if (!config) return 1;
  const database = await openCliDatabase(config);
  try {
    await migrateToLatest(database.db);
    const repository = new BarsRepository(database.db);
    const rows: FlaggedRow[] = [];
    let after: { symbol: string; time: Date } | undefined;
    for (;;) {
      const page = await repository.listFlagged(filter, PAGE_ROWS, after);
      rows.push(...page.map((bar) => ({ bar })));
      io.err(`${rows.length} flagged bars read\n`);
      const last = page.at(-1);
      if (!last || page.length < PAGE_ROWS) break;
      after = { symbol: last.symbol, time: last.time };
    }
    return rows;
  } finally {
    await database.close();
  }
}

function matches(bar: Bar, filter: FlaggedFilter): boolean {
  if (filter.symbols?.length && !filter.symbols.includes(bar.symbol)) return false;
  if (filter.reasons?.length && !(bar.quality ?? []).some((flag) => filter.reasons!.includes(flag))) return false;
  if (filter.from && bar.time < filter.from) return false;
  if (filter.to && bar.time > filter.to) return false;
  return true;
}

function formatReport(rows: readonly FlaggedRow[], limit: number): string {
  const lines: string[] = [];
  if (rows.length > 0) {
    const shown = rows.slice(0, limit);
    const table = [['symbol', 'date', 'flags', 'open', 'high', 'low', 'close', 'volume', 'source']].concat(
      shown.map(({ bar }) => [
        bar.symbol,
        bar.time.toISOString().slice(0, 10),
        (bar.quality ?? []).join(','),
        ...[bar.open, bar.high, bar.low, bar.close, bar.volume].map(String),
        bar.source,
      ]),
    );
    const aligned = alignedRows(table);
    lines.push(aligned[0]!, ...aligned.slice(1).map((line, i) => (shown[i]!.detail ? `${line}  ${shown[i]!.detail}` : line)));
    if (rows.length > shown.length) lines.push(`… ${rows.length - shown.length} more (raise --limit to list them)`);
    lines.push('');
  }
  const counts = new Map<string, number>(QUALITY_REASONS.map((r) => [r, 0]));
  for (const { bar } of rows) for (const flag of bar.quality ?? []) counts.set(flag, (counts.get(flag) ?? 0) + 1);
  const symbols = new Set(rows.map((r) => r.bar.symbol)).size;
  lines.push(
    ...alignedRows([
      ['flag', 'bars', 'training', 'outcomes'],
      ...QUALITY_REASONS.map((r) => [
        r,
        String(counts.get(r)),
        QUALITY_POLICY[r].training ? 'excluded' : 'kept',
        QUALITY_POLICY[r].outcomes ? 'excluded' : 'kept',
      ]),
    ]),
    `${rows.length} flagged bar(s) over ${symbols} symbol(s)`,
  );
  return `${lines.join('\n')}\n`;
}

/** Midnight UTC of a real `YYYY-MM-DD` date; null if it is not one. */
function parseDay(text: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return null;
  const date = new Date(`${text}T00:00:00Z`);
  return Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== text ? null : date;
}

await runAsCommand(import.meta.url, 'quality', main);
