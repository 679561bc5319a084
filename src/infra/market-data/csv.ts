import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { SYMBOL_PATTERN, type Bar } from './market-data.js';

/**
 * Parsing and validation of daily-bar CSV files, with no I/O: text in, bars and rejected rows out.
 *
 * Two vendor layouts are understood, told apart by their header line:
 *
 * | format         | header                                                                                    |
 * |----------------|-------------------------------------------------------------------------------------------|
 * | `alphavantage` | `timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient`   |
 * | `yahoo`        | `Date,Open,High,Low,Close,Adj Close,Volume`                                               |
 *
 * Every row is checked on its own, and a bad row is reported with its line number and skipped: one
 * vendor glitch never costs the rest of the file. The checks match the CHECK constraints of
 * `market_bars`, so every bar returned here can be stored.
 *
 * ```ts
 * const parsed = parseBarsCsv(text, { file: 'DA-BRK.B-T-2021-04-21.csv' });
 * if (parsed.ok) parsed.symbol; // 'BRK.B'
 * ```
 */

export type CsvFormat = 'alphavantage' | 'yahoo';

/** A data row that was not imported, and why. `line` is 1-based and counts the header as line 1. */
export interface RejectedRow {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}

export type ParsedBarsFile =
  | {
      readonly ok: true;
      readonly format: CsvFormat;
      readonly symbol: string;
      /** The good rows, in file order. */
      readonly bars: Bar[];
      readonly rejected: RejectedRow[];
      /** Data rows read (good + rejected), not counting the header or blank lines. */
      readonly rows: number;
    }
  /** The whole file was refused (unknown header, no usable symbol); no row of it is usable. */
  | { readonly ok: false; readonly reason: string };

export interface ParseOptions {
  /** Shown in rejections, and the source of the symbol unless `symbol` is given. */
  readonly file: string;
  /** Use this symbol instead of the one in the file name. */
  readonly symbol?: string | undefined;
}

/**
 * Both layouts put the seven fields we keep at the same positions: date, open, high, low, close,
 * adjusted close, volume. Alpha Vantage's extra dividend and split columns are not stored, because
 * the adjusted close already accounts for them.
 */
const FORMATS: ReadonlyArray<{ format: CsvFormat; label: string; header: readonly string[] }> = [
  {
    format: 'alphavantage',
    label: 'Alpha Vantage daily adjusted',
    header: ['timestamp', 'open', 'high', 'low', 'close', 'adjusted_close', 'volume', 'dividend_amount', 'split_coefficient'],
  },
  { format: 'yahoo', label: 'Yahoo', header: ['Date', 'Open', 'High', 'Low', 'Close', 'Adj Close', 'Volume'] },
];

/** Positions of open, high, low, close, adjusted close and volume in both layouts. */
const NUMBER_COLUMNS = [1, 2, 3, 4, 5, 6] as const;
const VOLUME_COLUMN = 6;

/** Alpha Vantage dumps are named `DA-<SYMBOL>-T-<download date>.csv`; anything else is `<SYMBOL>.csv`. */
const ALPHA_VANTAGE_FILE_NAME = /^DA-(.+)-T-\d{4}-\d{2}-\d{2}$/;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** Plain decimal numbers only: `Number()` alone would also accept '', '0x1F' and 'Infinity'. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseBarsCsv(text: string, options: ParseOptions): ParsedBarsFile {
  const { file } = options;
  // Quoting is off: neither vendor quotes fields, and csv-parse's recovery from a stray quote can
  // swallow the rest of the file. Without it every physical line is exactly one record, so a
  // malformed line is just one more bad row and a record's line number is its index + 1 (cheaper
  // than csv-parse's `info` option, which more than doubles the parse time).
  const records: string[][] = parse(text, { bom: true, quote: false, trim: true, relax_column_count: true });
  const isBlank = (record: readonly string[]) => record.length === 1 && record[0] === '';
  const headerIndex = records.findIndex((record) => !isBlank(record));
  const header = records[headerIndex];
  if (!header) return { ok: false, reason: 'empty file: no header line' };
  const layout = FORMATS.find((f) => f.header.join(',') === header.join(','));
  if (!layout) return { ok: false, reason: unknownHeaderReason(header) };

  const symbol = options.symbol ?? symbolFromFileName(file);
  if (!SYMBOL_PATTERN.test(symbol)) {
    const origin = options.symbol === undefined ? `taken from the file name` : `given`;
    return {
      ok: false,
      reason:
        `the symbol ${JSON.stringify(symbol)} ${origin} is not a ticker (upper-case letters, digits, '.' or '-', like AAPL or BRK.B); ` +
        `name the file <SYMBOL>.csv or DA-<SYMBOL>-T-<YYYY-MM-DD>.csv`,
    };
  }

  const bars: Bar[] = [];
  const rejected: RejectedRow[] = [];
  const firstLineOfDate = new Map<string, number>();
  let rows = 0;
  for (let index = headerIndex + 1; index < records.length; index++) {
    const record = records[index]!;
    if (isBlank(record)) continue;
    rows++;
    const line = index + 1;
    const result = readRow(record, layout.header, line, firstLineOfDate);
    if (typeof result === 'string') rejected.push({ file, line, reason: result });
    else {
      result.symbol = symbol;
      result.source = layout.format;
      bars.push(result as Bar);
    }
  }
  return { ok: true, format: layout.format, symbol, bars, rejected, rows };
}

/** `DA-BRK.B-T-2021-04-21.csv` → `BRK.B`; `AAPL.csv` → `AAPL`. Not validated: see SYMBOL_PATTERN. */
export function symbolFromFileName(file: string): string {
  const stem = path.basename(file).replace(/\.csv$/i, '');
  return ALPHA_VANTAGE_FILE_NAME.exec(stem)?.[1] ?? stem;
}

/** A bar still missing its symbol and source, which the caller fills in (cheaper than spreading a copy). */
type RowValues = Omit<Bar, 'symbol' | 'source'> & { symbol?: string; source?: string };

/** The row's values, or the first reason it cannot be stored. */
function readRow(record: readonly string[], header: readonly string[], line: number, firstLineOfDate: Map<string, number>): RowValues | string {
  if (record.length !== header.length) return `expected ${header.length} columns, found ${record.length}`;
  if (record.includes('null')) return `"null" values (Yahoo writes these for days without prices)`;

  const [dateText = ''] = record;
  const time = parseDate(dateText);
  if (!time) return `unparseable date ${JSON.stringify(dateText)} (expected YYYY-MM-DD)`;
  // A file that says two things about one day cannot be trusted for that day: every repeat is refused,
  // even when the first occurrence was itself refused for another reason.
  const firstLine = firstLineOfDate.get(dateText);
  if (firstLine !== undefined) return `duplicate date ${dateText} (first on line ${firstLine})`;
  firstLineOfDate.set(dateText, line);

  const numbers: number[] = [];
  for (const column of NUMBER_COLUMNS) {
    const text = record[column] ?? '';
    const value = DECIMAL.test(text) ? Number(text) : Number.NaN;
    if (!Number.isFinite(value)) return `${header[column]} is not a number (${JSON.stringify(text)})`;
    if (column === VOLUME_COLUMN && value < 0) return `${header[column]} must not be negative (got ${text})`;
    if (column !== VOLUME_COLUMN && value <= 0) return `${header[column]} must be positive (got ${text})`;
    numbers.push(value);
  }
  const [open, high, low, close, adjClose, volume] = numbers as [number, number, number, number, number, number];
  if (low > high) return `low ${low} is above high ${high}`;
  if (open < low || open > high) return `open ${open} is outside [low ${low}, high ${high}]`;
  if (close < low || close > high) return `close ${close} is outside [low ${low}, high ${high}]`;
  return { time, open, high, low, close, adjClose, volume };
}

/**
 * Every file of a data set repeats the same few thousand trading dates, so each date string is
 * validated once; bounded so a hostile file of random dates cannot grow it without limit.
 */
const dateCache = new Map<string, number>();
const DATE_CACHE_LIMIT = 100_000;

/** Midnight UTC of a real calendar date, or undefined ('2021-02-30' is refused, not rolled over). */
function parseDate(text: string): Date | undefined {
  const cached = dateCache.get(text);
  if (cached !== undefined) return new Date(cached);
  const time = parseDateUncached(text);
  if (time && dateCache.size < DATE_CACHE_LIMIT) dateCache.set(text, time.getTime());
  return time;
}

function parseDateUncached(text: string): Date | undefined {
  const match = DATE.exec(text);
  if (!match) return undefined;
  const [, year, month, day] = match.map(Number) as [number, number, number, number];
  // Date.UTC gives the same instant as new Date(`${text}T00:00:00Z`) at a fraction of the cost of
  // parsing a string. It rolls '02-30' over to March and reads years 0-99 as 19xx; the comparison
  // below refuses both.
  const time = new Date(Date.UTC(year, month - 1, day));
  return time.getUTCFullYear() === year && time.getUTCMonth() === month - 1 && time.getUTCDate() === day ? time : undefined;
}

function unknownHeaderReason(record: readonly string[]): string {
  const found = record.join(',');
  const shown = found.length > 80 ? `${found.slice(0, 80)}…` : found;
  const expected = FORMATS.map((f) => `${f.label} "${f.header.join(',')}"`).join(' or ');
  return `unknown header ${JSON.stringify(shown)}; expected ${expected}`;
}
