import { createReadStream } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { assessSeries, type QualityOptions } from './bar-quality.js';
import { checkBar, checkMove, latestBarTime } from './bar-rules.js';
import { SYMBOL_PATTERN, type Bar, type QualityReason } from './market-data.js';

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
 * vendor glitch never costs the rest of the file. Beyond the format, rows are held to the serving
 * rules of bar-rules.ts (bounded prices, volume and ratios, no future date, and no step of the adjusted
 * close of more than 10× from the row before), so every bar returned here can be stored and served.
 *
 * A line longer than {@link MAX_LINE_CHARS} is a rejected row without being split into fields:
 * {@link readBarsCsvFile} streams the file and drops such a line as it goes, so a 50 MB line costs
 * the memory of one read chunk, not of the line.
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
  /** "Today" for the no-future-bars rule; default: now. */
  readonly now?: Date | undefined;
  /** Settings of the data-quality flags (bar-quality.ts) set on every returned bar. */
  readonly quality?: QualityOptions | undefined;
}

/**
 * Longest line read, in characters. Real daily rows are under 100 characters; a longer line is a broken
 * or hostile file, and splitting it into fields would cost memory in proportion to its length.
 */
export const MAX_LINE_CHARS = 1_024;

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
  const lines = new LineBounder();
  lines.push(text);
  return parseBounded(lines.end(), options);
}

/**
 * {@link parseBarsCsv} of a file, streamed: lines over {@link MAX_LINE_CHARS} are dropped while reading,
 * so memory does not grow with the length of a line. Rejects only when the file cannot be read.
 */
export async function readBarsCsvFile(file: string, options: Omit<ParseOptions, 'file'> = {}): Promise<ParsedBarsFile> {
  const lines = new LineBounder();
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 })) lines.push(chunk as string);
  return parseBounded(lines.end(), { ...options, file });
}

/** Text whose every line is at most MAX_LINE_CHARS long, and the lines that were emptied to make it so. */
interface BoundedText {
  readonly text: string;
  /** 1-based line number → its full length in characters. */
  readonly overlong: ReadonlyMap<number, number>;
}

/**
 * Splits text fed in chunks into lines (`\r\n`, `\n` or a lone `\r` ends one) and keeps every line up to
 * MAX_LINE_CHARS; a longer one is kept as an empty line (so record numbers stay line numbers) and only
 * its length is remembered, never its text. Lines are rejoined with `\n` alone, so csv-parse, told to
 * split on `\n`, numbers its records exactly as this numbers lines, whatever mix of endings the file has.
 */
class LineBounder {
  readonly #parts: string[] = [];
  readonly #overlong = new Map<number, number>();
  /** The unterminated end of the text so far, while it is short enough to keep. */
  #pending = '';
  /** Length of the current line when it is already too long (its text is being dropped), else -1. */
  #dropping = -1;
  #line = 1;
  /** The previous chunk ended in '\r': a '\n' starting this one belongs to that line break. */
  #afterCr = false;

  push(chunk: string): void {
    let start = 0;
    if (this.#afterCr && chunk.startsWith('\n')) start = 1;
    this.#afterCr = false;
    const breaks = /\r\n|\r|\n/g;
    breaks.lastIndex = start;
    for (let match = breaks.exec(chunk); match; match = breaks.exec(chunk)) {
      // A '\r' at the very end may be the first half of a '\r\n' split across chunks.
      if (match[0] === '\r' && match.index === chunk.length - 1) this.#afterCr = true;
      this.#take(chunk.slice(start, match.index));
      this.#endLine(true);
      start = match.index + match[0].length;
    }
    this.#take(chunk.slice(start));
  }

  end(): BoundedText {
    this.#endLine(false);
    return { text: this.#parts.join(''), overlong: this.#overlong };
  }

  #take(piece: string): void {
    if (piece.length === 0) return;
    if (this.#dropping >= 0) this.#dropping += piece.length;
    else if (this.#pending.length + piece.length > MAX_LINE_CHARS) {
      this.#dropping = this.#pending.length + piece.length;
      this.#pending = '';
    } else this.#pending += piece;
  }

  #endLine(terminated: boolean): void {
    if (this.#dropping >= 0) this.#overlong.set(this.#line, this.#dropping);
    else this.#parts.push(this.#pending);
    this.#pending = '';
    this.#dropping = -1;
    if (terminated) {
      this.#parts.push('\n');
      this.#line++;
    }
  }
}

function parseBounded({ text, overlong }: BoundedText, options: ParseOptions): ParsedBarsFile {
  const { file } = options;
  // Quoting is off: neither vendor quotes fields, and csv-parse's recovery from a stray quote can
  // swallow the rest of the file. Without it every physical line is exactly one record, so a
  // malformed line is just one more bad row and a record's line number is its index + 1 (cheaper
  // than csv-parse's `info` option, which more than doubles the parse time).
  const records: string[][] = parse(text, { bom: true, quote: false, trim: true, relax_column_count: true, record_delimiter: '\n' });
  const isBlank = (record: readonly string[], index: number) => record.length === 1 && record[0] === '' && !overlong.has(index + 1);
  const headerIndex = records.findIndex((record, index) => !isBlank(record, index));
  const header = records[headerIndex];
  if (!header) return { ok: false, reason: 'empty file: no header line' };
  if (overlong.has(headerIndex + 1))
    return {
      ok: false,
      reason: `line ${headerIndex + 1} is not a header: ${overlong.get(headerIndex + 1)} characters long (at most ${MAX_LINE_CHARS})`,
    };
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

  const latest = latestBarTime(options.now ?? new Date());
  const bars: Bar[] = [];
  const barLines: number[] = [];
  const rejected: RejectedRow[] = [];
  const firstLineOfDate = new Map<string, number>();
  let rows = 0;
  for (let index = headerIndex + 1; index < records.length; index++) {
    const record = records[index]!;
    const line = index + 1;
    const length = overlong.get(line);
    if (length !== undefined) {
      rows++;
      rejected.push({ file, line, reason: `line is ${length} characters long (at most ${MAX_LINE_CHARS}): not read` });
      continue;
    }
    if (isBlank(record, index)) continue;
    rows++;
    const result = readRow(record, layout.header, line, firstLineOfDate);
    const reason = typeof result === 'string' ? result : checkBar(result, latest);
    if (reason !== undefined) rejected.push({ file, line, reason });
    else {
      const bar = result as RowValues;
      bar.symbol = symbol;
      bar.source = layout.format;
      bars.push(bar as Bar);
      barLines.push(line);
    }
  }
  const moved = rejectJumps(bars, barLines, file);
  if (moved.length === 0) return { ok: true, format: layout.format, symbol, bars: flagged(bars, options.quality), rejected, rows };
  const jumped = new Set(moved.map((r) => r.line));
  rejected.push(...moved);
  rejected.sort((a, b) => a.line - b.line);
  const kept = bars.filter((_, i) => !jumped.has(barLines[i]!));
  return { ok: true, format: layout.format, symbol, bars: flagged(kept, options.quality), rejected, rows };
}

/**
 * The file's bars with their data-quality flags, judged over the file in date order (the file is the
 * symbol's history: its first bar has no gap or move to judge). Files come in date order, ascending or
 * descending, and keep their order here.
 */
function flagged(bars: readonly Bar[], options: QualityOptions | undefined): Bar[] {
  const order = bars.map((_, i) => i).sort((a, b) => bars[a]!.time.getTime() - bars[b]!.time.getTime());
  const flags = assessSeries(
    order.map((i) => bars[i]!),
    options,
  );
  const out = [...bars];
  order.forEach((i, k) => ((out[i] as RowValues).quality = flags[k]!));
  return out;
}

/**
 * The day-over-day rule over a file's good rows, in date order: each is compared with the last one
 * kept before it, so one bad spike costs its own row and not the rows after it. (A bad first row is
 * kept, having nothing before it, and costs the rows of the following week: past the rule's 7 days
 * nothing is compared.)
 */
function rejectJumps(bars: readonly Bar[], lines: readonly number[], file: string): RejectedRow[] {
  const order = bars.map((_, i) => i);
  // Files are in date order already (ascending or descending); sorting a sorted list is cheap.
  order.sort((a, b) => bars[a]!.time.getTime() - bars[b]!.time.getTime());
  const out: RejectedRow[] = [];
  let last = -1;
  for (const i of order) {
    const reason = last >= 0 ? checkMove(bars[last]!, bars[i]!, `line ${lines[last]!}`) : undefined;
    if (reason) out.push({ file, line: lines[i]!, reason });
    else last = i;
  }
  return out;
}

/** `DA-BRK.B-T-2021-04-21.csv` → `BRK.B`; `AAPL.csv` → `AAPL`. Not validated: see SYMBOL_PATTERN. */
export function symbolFromFileName(file: string): string {
  const stem = path.basename(file).replace(/\.csv$/i, '');
  return ALPHA_VANTAGE_FILE_NAME.exec(stem)?.[1] ?? stem;
}

/** A bar still missing its symbol and source, which the caller fills in (cheaper than spreading a copy). */
type RowValues = Omit<Bar, 'symbol' | 'source' | 'quality'> & { symbol?: string; source?: string; quality?: readonly QualityReason[] };

/** The row's values, or the first reason they cannot be read. */
function readRow(
  record: readonly string[],
  header: readonly string[],
  line: number,
  firstLineOfDate: Map<string, number>,
): RowValues | string {
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
  // Consistency, magnitudes and dates are the serving rules' (bar-rules.ts), checked by the caller.
  const [open, high, low, close, adjClose, volume] = numbers as [number, number, number, number, number, number];
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
