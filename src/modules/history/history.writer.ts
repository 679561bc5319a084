import { LRUCache } from 'lru-cache';
import type { Logger } from '../../infra/logger/logger.js';
import { compareSpillFiles, CorruptSpillFile, SpillDirectory, type SpillFile } from './history.spill.js';
import { historyKey, historyRowProblem, type HistoryRow, type HistorySink } from './history.types.js';
import { withDeadline } from '../../shared/deadline.js';

/**
 * The durable, buffered write path of prediction history. The request path calls `record()`, which
 * only touches memory; a background loop writes batches to the database; while the database is
 * unreachable, rows wait in memory and, past a bound, in files on disk, and are written once it
 * answers again.
 *
 * ```ts
 * const writer = await HistoryWriter.open({ repository: new HistoryRepository(db), logger, spillDir });
 * writer.record(rows);   // synchronous; never throws; never waits for the database
 * writer.health();       // { status: 'degraded', detail: 'writes failing since …' } during an outage
 * await writer.close();  // writes what it can, saves the rest to spillDir
 * ```
 *
 * The guarantees, and what makes each one true:
 *
 * - **Nothing accepted is lost.** A row leaves memory only once the database has committed it or it
 *   is fsynced on disk; a spill file is deleted only after its rows are committed. `close()` saves to
 *   disk whatever it could not write. (A hard crash loses what was in memory — at most about
 *   `maxBufferRows` rows — since making every request wait for a disk write is the price of avoiding it.)
 * - **Nothing is written twice.** `record()` drops rows whose key it accepted recently, and the table's
 *   unique key with `on conflict do nothing` turns every other repeat — a retry after a write whose
 *   outcome was unknown, a file replayed after a crash, a key older than the recent set — into a no-op.
 * - **The first accepted row of a key wins.** Every accepted row gets a sequence number, batches and
 *   spill files each hold consecutive rows, and they are written oldest first, across restarts too.
 * - **The request path never waits.** `record()` validates and appends to an array. The one exception is
 *   an outage long enough to fill the buffer: then the `record()` call that overflows it writes the oldest
 *   half of the buffer to a file synchronously (once per `maxBufferRows / 2` rows), so that those rows
 *   are at every instant either in memory or on disk.
 * - **Memory is bounded.** By `maxBufferRows` plus one batch in flight while the spill directory works;
 *   if it does not (disk full, directory gone), rows stay in memory, as losing them would be worse,
 *   up to `maxMemoryRows`; beyond that `record()` refuses new rows (counted in `state.refusedRows` and
 *   logged) rather than let the process run out of memory. Refused rows were never accepted.
 */
export interface HistoryWriterOptions {
  readonly repository: HistorySink;
  readonly logger: Logger;
  /** Where rows wait on disk while the database is unreachable. One writer per directory. */
  readonly spillDir: string;
  /** Write what is buffered at least this often. Default 1,000 ms. */
  readonly flushIntervalMs?: number;
  /** Rows per write; reaching it also triggers a write at once. Default 2,000. */
  readonly maxBatchRows?: number;
  /** Rows kept in memory before the oldest are spilled to disk. Default 20,000. */
  readonly maxBufferRows?: number;
  /** Hard memory limit, reached only when spilling fails: beyond it rows are refused. Default 4 × maxBufferRows. */
  readonly maxMemoryRows?: number;
  /**
   * How many keys `record()` remembers to drop repeats (least recently seen forgotten first). Default
   * 100,000 keys, a few MB: more than the keys one asOf bar produces over every symbol, strategy and
   * version served, so a repeat is dropped for as long as its bar is the newest. A repeat older than
   * that is written again and skipped by the table's unique key: it costs a little I/O, never a row.
   */
  readonly recentKeys?: number;
  /** First retry delay after a failed write; doubles per failure. Default 500 ms. */
  readonly retryBaseMs?: number;
  /** The retry delay never exceeds this. Default 30,000 ms. */
  readonly retryMaxMs?: number;
  /**
   * A write that has not answered within this long counts as failed and is retried (it may still
   * commit later; the retry is then a no-op). Without it a hung connection would stall history forever.
   * Default 30,000 ms.
   */
  readonly writeTimeoutMs?: number;
  /** `close()` resolves within about this long, spilling what it could not write. Default 10,000 ms. */
  readonly closeTimeoutMs?: number;
  /** Called after each successful write with the number of rows that were new to the table. */
  readonly onRowsWritten?: (rows: number) => void;
  /** Called whenever the number of rows held in memory (buffered or being written) changes. */
  readonly onBufferSize?: (rows: number) => void;
}

/** What `record()` did with the rows it was given; every row is counted exactly once. */
export interface RecordResult {
  /** Taken over by the writer: it will be written or saved to disk. */
  accepted: number;
  /** Dropped because the same key was accepted recently. */
  duplicates: number;
  /** Dropped because the table would refuse them (see historyRowProblem); logged. */
  invalid: number;
  /** Not taken: the writer is closed, or memory is full because spilling fails; logged. */
  refused: number;
}

export interface HistoryWriterState {
  /** `degraded` while writes fail or spilling to disk fails. */
  readonly status: 'ok' | 'degraded';
  /** Rows in memory: buffered plus the batch being written. */
  readonly bufferedRows: number;
  /** Rows waiting on disk, and in how many files. */
  readonly spilledRows: number;
  readonly spillFiles: number;
  readonly consecutiveFailures: number;
  readonly failingSince: Date | undefined;
  readonly lastError: string | undefined;
  /** The wait before the next attempt, while failing. */
  readonly retryDelayMs: number | undefined;
  /** Why the last spill failed, until one succeeds. */
  readonly spillError: string | undefined;
  /** Totals since open. */
  readonly writtenRows: number;
  readonly invalidRows: number;
  readonly refusedRows: number;
  /** Rows the database refused as invalid, set aside in `rejected.ndjson` (a bug if ever non-zero). */
  readonly rejectedRows: number;
  readonly closed: boolean;
}

/** The retry delay after `failures` consecutive failed writes: doubling from `baseMs`, capped at `maxMs`. */
export function retryDelay(failures: number, baseMs: number, maxMs: number): number {
  // 2 ** n becomes Infinity past n ≈ 1,024 failures; min() still caps it.
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
}

/**
 * Whether the database refused the rows themselves (SQLSTATE class 22 "data exception" or 23
 * "integrity constraint violation"), as opposed to being unreachable or misconfigured. Only then is
 * retrying the same batch pointless. Anything else — connection errors, timeouts, a missing table
 * before migrations ran — is an outage: retry later.
 */
export function isRowError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

type FlushOutcome = 'idle' | 'ok' | 'failed';

/** An accepted row and its place in acceptance order. */
interface Pending {
  readonly seq: number;
  readonly row: HistoryRow;
}

type Batch = { readonly kind: 'memory'; readonly items: Pending[] } | { readonly kind: 'file'; readonly file: SpillFile };

const INVALID_LOG_INTERVAL_MS = 60_000;

export class HistoryWriter {
  readonly #repository: HistorySink;
  readonly #logger: Logger;
  readonly #spill: SpillDirectory;
  readonly #settings: Settings;
  readonly #onRowsWritten: (rows: number) => void;
  readonly #onBufferSize: (rows: number) => void;

  /** This lifetime's run number; spill files of earlier runs hold older rows. */
  readonly #run: number;
  #nextSeq = 0;
  /** Accepted rows in memory, oldest first, not being written. */
  #buffer: Pending[] = [];
  /** The memory batch being written, if any; it goes back to the front of the buffer if the write fails. */
  #inFlight: Pending[] | undefined;
  /** Spill files on disk, oldest first (compareSpillFiles). */
  #files: SpillFile[];
  /**
   * Keys accepted recently, the least recently seen forgotten first. An LRU rather than a Set kept in
   * recency order by delete + re-add: every prediction served asks here (50 per warm 50-symbol
   * request), and the Set's holes made V8 rebuild a table of up to recentKeys entries again and again
   * (a profiled ~2.5% of that request, plus the garbage). Undefined when recentKeys is 0: nothing remembered.
   */
  readonly #recent: LRUCache<string, true> | undefined;

  #timer: NodeJS.Timeout | undefined;
  #timerDelay = 0;
  /** The one write running, if any. */
  #flight: Promise<FlushOutcome> | undefined;

  #failures = 0;
  #failingSince: Date | undefined;
  #lastError: string | undefined;
  #spillsThisOutage = 0;
  #spillError: string | undefined;
  /** After a failed spill, the memory size at which to try again (not at every record() call). */
  #spillRetryAt = 0;

  #acceptedRows = 0;
  #writtenRows = 0;
  #invalidRows = 0;
  #invalidSinceLog = 0;
  #lastInvalidLogAt = -Infinity;
  #refusedRows = 0;
  #refusedLogged = false;
  #rejectedRows = 0;

  #closed = false;
  #closing: Promise<void> | undefined;
  /** Set once close() has saved what was in memory: a write still running must then leave the rows alone. */
  #finished = false;

  /**
   * Opens the spill directory (creating it) and picks up the files a previous run left there: they are
   * written, oldest first, before anything this run accepts. Throws if the options are invalid or the
   * directory is not usable.
   */
  static async open(options: HistoryWriterOptions): Promise<HistoryWriter> {
    const settings = settingsOf(options);
    const { directory, files, run } = await SpillDirectory.open(options.spillDir);
    const writer = new HistoryWriter(options, settings, directory, files, run);
    if (files.length > 0) {
      options.logger.info(
        { spillDir: directory.dir, files: files.length, rows: writer.#spilledRows() },
        'history rows from a previous run are waiting on disk; writing them first',
      );
      writer.#arm(settings.flushIntervalMs);
    }
    return writer;
  }

  private constructor(options: HistoryWriterOptions, settings: Settings, spill: SpillDirectory, files: SpillFile[], run: number) {
    this.#repository = options.repository;
    this.#logger = options.logger;
    this.#settings = settings;
    this.#recent = settings.recentKeys > 0 ? new LRUCache<string, true>({ max: settings.recentKeys }) : undefined;
    this.#spill = spill;
    this.#files = files;
    this.#run = run;
    this.#onRowsWritten = guarded(options.onRowsWritten, options.logger, 'onRowsWritten');
    this.#onBufferSize = guarded(options.onBufferSize, options.logger, 'onBufferSize');
  }

  /**
   * Takes rows over for writing. Synchronous and never throws: invalid rows, recent repeats and rows
   * refused (closed writer, memory full) are counted in the result and logged, not thrown.
   */
  record(rows: readonly HistoryRow[]): RecordResult {
    const result: RecordResult = { accepted: 0, duplicates: 0, invalid: 0, refused: 0 };
    try {
      if (this.#closed) {
        result.refused = rows.length;
        this.#refuse(rows.length, 'the history writer is closed');
        return result;
      }
      for (const row of rows) {
        const problem = historyRowProblem(row);
        if (problem !== undefined) {
          result.invalid++;
          this.#noteInvalid(row, problem);
          continue;
        }
        const key = historyKey(row);
        if (this.#seenRecently(key)) {
          result.duplicates++;
          continue;
        }
        if (this.#memoryRows() >= this.#settings.maxMemoryRows) {
          // Not remembered: once things recover, the same prediction served again is accepted.
          result.refused++;
          this.#refuse(1, `memory holds ${this.#memoryRows()} history rows and spilling to disk fails`);
          continue;
        }
        this.#remember(key);
        this.#buffer.push({ seq: this.#nextSeq++, row: copyRow(row) });
        result.accepted++;
        this.#acceptedRows++;
        // Inside the loop, so that one huge call spills as it goes instead of meeting maxMemoryRows.
        this.#spillOverflow();
      }
      if (result.accepted > 0) {
        this.#reportBufferSize();
        this.#scheduleAfterRecord();
      }
    } catch (error) {
      // Unreachable by design; here so a bug in the writer can never fail a request.
      this.#logger.error({ err: error }, 'history writer: record() failed unexpectedly');
    }
    return result;
  }

  /**
   * Writes everything pending now, oldest first, ignoring any retry wait; resolves true when nothing
   * is left, false at the first failed write (the rows stay pending, retried as usual) or once the
   * writer is closed. For tests and operators; the background loop does the same on its own.
   */
  async flush(): Promise<boolean> {
    for (;;) {
      if (this.#closed) return false;
      const outcome = await this.#startFlush();
      this.#afterFlush(outcome);
      if (outcome === 'idle') return true;
      if (outcome === 'failed') return false;
    }
  }

  /**
   * Stops the background loop, writes what it can within `closeTimeoutMs`, and saves everything still
   * in memory to the spill directory, where the next `open()` finds it. Resolves when done, whether or
   * not the database answered; calling it again returns the same promise. Afterwards `record()` refuses.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  get state(): HistoryWriterState {
    const failing = this.#failures > 0;
    return {
      status: failing || this.#spillError !== undefined ? 'degraded' : 'ok',
      bufferedRows: this.#memoryRows(),
      spilledRows: this.#spilledRows(),
      spillFiles: this.#files.length,
      consecutiveFailures: this.#failures,
      failingSince: this.#failingSince,
      lastError: this.#lastError,
      retryDelayMs: failing ? this.#retryDelay() : undefined,
      spillError: this.#spillError,
      writtenRows: this.#writtenRows,
      invalidRows: this.#invalidRows,
      refusedRows: this.#refusedRows,
      rejectedRows: this.#rejectedRows,
      closed: this.#closed,
    };
  }

  /** For the gateway's health report: `degraded` (never `down`: serving does not depend on history). */
  health(): { status: 'ok' | 'degraded'; detail: string } {
    const s = this.state;
    const parts: string[] = [];
    if (s.consecutiveFailures > 0) {
      parts.push(
        `writes failing since ${s.failingSince?.toISOString()} (${s.consecutiveFailures} attempts, next in ${s.retryDelayMs} ms): ${s.lastError}`,
      );
    }
    if (s.spillError !== undefined) parts.push(`spilling to ${this.#spill.dir} fails: ${s.spillError}`);
    parts.push(`${s.bufferedRows} rows in memory`);
    if (s.spillFiles > 0) parts.push(`${s.spilledRows} rows in ${s.spillFiles} spill files in ${this.#spill.dir}`);
    if (s.refusedRows > 0) parts.push(`${s.refusedRows} rows refused`);
    if (s.rejectedRows > 0) parts.push(`${s.rejectedRows} rows rejected by the database`);
    return { status: s.status, detail: parts.join('; ') };
  }

  // ---- scheduling ----------------------------------------------------------------------------------

  /** After rows were accepted: write soon, or at once if a batch is full. */
  #scheduleAfterRecord(): void {
    // A running write schedules the next one when it ends; while failing, the retry timer is set.
    if (this.#flight || this.#failures > 0) return;
    if (this.#buffer.length >= this.#settings.maxBatchRows) {
      if (!(this.#timer && this.#timerDelay === 0)) this.#arm(0);
    } else if (!this.#timer) {
      this.#arm(this.#settings.flushIntervalMs);
    }
  }

  #afterFlush(outcome: FlushOutcome): void {
    if (outcome === 'failed') this.#arm(this.#retryDelay());
    else if (outcome === 'ok') {
      // Catching up (spill files, or a full batch waiting) goes on at once; a partial batch waits.
      if (this.#files.length > 0 || this.#buffer.length >= this.#settings.maxBatchRows) this.#arm(0);
      else if (this.#buffer.length > 0) this.#arm(this.#settings.flushIntervalMs);
    }
  }

  /** One timer at a time; arming replaces it. Unref'd: pending rows are close()'s job, not the timer's. */
  #arm(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timerDelay = delayMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#startFlush().then((outcome) => this.#afterFlush(outcome));
    }, delayMs);
    this.#timer.unref();
  }

  #retryDelay(): number {
    return retryDelay(this.#failures, this.#settings.retryBaseMs, this.#settings.retryMaxMs);
  }

  /** At most one write at a time: a caller arriving during one shares its outcome. */
  #startFlush(): Promise<FlushOutcome> {
    this.#flight ??= this.#flushOnce().finally(() => {
      this.#flight = undefined;
    });
    return this.#flight;
  }

  // ---- writing -------------------------------------------------------------------------------------

  /** Writes the oldest pending batch. Never rejects. */
  async #flushOnce(): Promise<FlushOutcome> {
    const batch = this.#takeBatch();
    if (!batch) return 'idle';
    let written: number;
    try {
      if (batch.kind === 'file') {
        const rows = await this.#readSpillFile(batch.file);
        if (rows === undefined) return 'ok'; // set aside or vanished; nothing to write
        written = await this.#write(rows);
        // Deleted only now that its rows are committed. If deleting fails, the file is replayed again
        // by a later run, which is a no-op.
        this.#files = this.#files.filter((f) => f !== batch.file);
        await this.#spill.remove(batch.file).catch((error: unknown) => {
          this.#logger.warn({ err: error, file: batch.file.path }, 'history spill file written but not deleted; its replay will be a no-op');
        });
      } else {
        written = await this.#write(batch.items.map((p) => p.row));
        this.#inFlight = undefined;
      }
    } catch (error) {
      if (this.#finished) return 'failed'; // close() already saved these rows to disk
      if (batch.kind === 'memory') {
        // Back to the front: these rows are older than everything else in memory.
        this.#inFlight = undefined;
        this.#buffer = batch.items.concat(this.#buffer);
        this.#spillOverflow();
      }
      this.#noteFailure(error);
      this.#reportBufferSize();
      return 'failed';
    }
    this.#noteSuccess(written);
    this.#reportBufferSize();
    return 'ok';
  }

  /**
   * The oldest pending rows: the oldest spill file if it is older than memory's oldest row, otherwise
   * up to maxBatchRows rows from the front of the buffer — but only rows older than every spill file,
   * since a file written while a failed batch was in flight holds rows newer than that batch.
   */
  #takeBatch(): Batch | undefined {
    const file = this.#files[0];
    const head = this.#buffer[0];
    if (file && (!head || this.#fileIsOlder(file, head.seq))) return { kind: 'file', file };
    if (!head) return undefined;
    const before = file ? file.firstSeq : Infinity; // here `file`, if any, is of this run
    let n = 0;
    while (n < this.#buffer.length && n < this.#settings.maxBatchRows && this.#buffer[n]!.seq < before) n++;
    const items = this.#buffer.splice(0, n);
    this.#inFlight = items;
    return { kind: 'memory', items };
  }

  #fileIsOlder(file: SpillFile, seq: number): boolean {
    return file.run < this.#run || (file.run === this.#run && file.firstSeq < seq);
  }

  /** The rows of a spill file; undefined if it is gone or corrupt (then moved aside and logged). */
  async #readSpillFile(file: SpillFile): Promise<HistoryRow[] | undefined> {
    try {
      const rows = await this.#spill.read(file);
      if (rows !== undefined) return rows;
      this.#logger.warn({ file: file.path }, 'history spill file disappeared before it was replayed');
    } catch (error) {
      if (!(error instanceof CorruptSpillFile)) throw error; // an I/O error: retry like a failed write
      const target = await this.#spill.quarantine(file).catch(() => file.path);
      this.#logger.error({ err: error, file: target }, 'history spill file is corrupt; moved aside, not replayed');
    }
    this.#files = this.#files.filter((f) => f !== file);
    return undefined;
  }

  /**
   * One insertMany, bounded by writeTimeoutMs. If the database refuses a row as invalid (which
   * validation in record() should make impossible), the batch is written row by row so that the one
   * bad row is set aside in rejected.ndjson instead of blocking every row behind it forever.
   */
  async #write(rows: readonly HistoryRow[]): Promise<number> {
    try {
      return await this.#timed(this.#repository.insertMany(rows));
    } catch (error) {
      if (!isRowError(error)) throw error;
      this.#logger.error({ err: error, rows: rows.length }, 'the database refused a history row; writing this batch row by row to set it aside');
      let written = 0;
      for (const row of rows) {
        try {
          written += await this.#timed(this.#repository.insertMany([row]));
        } catch (rowError) {
          if (!isRowError(rowError)) throw rowError; // an outage mid-way: the whole batch is retried, written rows as no-ops
          this.#setAside(row, rowError);
        }
      }
      return written;
    }
  }

  #timed<T>(promise: Promise<T>): Promise<T> {
    const ms = this.#settings.writeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`history write did not answer within ${ms} ms`)), ms);
        timer.unref(); // the write itself keeps the process alive if it must
      }),
    ]).finally(() => clearTimeout(timer));
  }

  #setAside(row: HistoryRow, error: unknown): void {
    this.#rejectedRows++;
    const reason = error instanceof Error ? error.message : String(error);
    try {
      const file = this.#spill.appendRejected(row, reason);
      this.#logger.error({ err: error, file, key: historyKey(row) }, 'history row refused by the database; set aside');
    } catch (appendError) {
      // Nowhere else to keep it: the log line is its last copy.
      this.#logger.error({ err: error, appendError, row }, 'history row refused by the database and could not be set aside');
    }
  }

  #noteSuccess(written: number): void {
    this.#writtenRows += written;
    this.#onRowsWritten(written);
    if (this.#failures > 0) {
      this.#logger.info(
        { failedAttempts: this.#failures, outageMs: Date.now() - (this.#failingSince?.getTime() ?? Date.now()), spilledRows: this.#spilledRows() },
        'history writes recovered',
      );
    }
    this.#failures = 0;
    this.#failingSince = undefined;
    this.#lastError = undefined;
    this.#spillsThisOutage = 0;
    if (this.#memoryRows() < this.#settings.maxMemoryRows) this.#refusedLogged = false; // a new refusal is news again
    if (this.#spillError !== undefined && this.#memoryRows() <= this.#settings.maxBufferRows) {
      // No row depends on the spill directory any more; the next overflow tries it again (and says so if it still fails).
      this.#logger.info({ spillDir: this.#spill.dir }, 'history rows are back within the buffer bound; no spilling needed');
      this.#spillError = undefined;
    }
  }

  /** Logged once per outage (the first failure); later attempts only at debug level. */
  #noteFailure(error: unknown): void {
    this.#failures++;
    this.#lastError = error instanceof Error ? error.message : String(error);
    if (this.#failures === 1) {
      this.#failingSince = new Date();
      this.#logger.error(
        { err: error, bufferedRows: this.#memoryRows(), spilledRows: this.#spilledRows(), spillDir: this.#spill.dir },
        'history writes are failing; rows are kept in memory (the oldest spilled to disk past the buffer bound) and retried with backoff',
      );
    } else {
      this.#logger.debug({ err: error, attempts: this.#failures, retryInMs: this.#retryDelay() }, 'history write failed again');
    }
  }

  // ---- memory and spilling -------------------------------------------------------------------------

  #memoryRows(): number {
    return this.#buffer.length + (this.#inFlight?.length ?? 0);
  }

  #spilledRows(): number {
    return this.#files.reduce((sum, file) => sum + file.rows, 0);
  }

  /** Over the bound, spills the oldest buffered rows down to half the bound, so spills are few and files large. */
  #spillOverflow(): void {
    const memory = this.#memoryRows();
    if (memory <= this.#settings.maxBufferRows) return;
    if (this.#spillError !== undefined && memory < this.#spillRetryAt) return;
    this.#spillOldest(memory - Math.floor(this.#settings.maxBufferRows / 2));
  }

  /**
   * Moves the oldest `count` buffered rows (fewer if fewer are buffered) to spill files. A file must
   * hold consecutive rows, so a file never reaches past the first row of a newer file already on disk
   * (possible after a failed write put its batch back in front); that case simply makes two files.
   * Returns whether everything asked for was spilled; on a failure the rows stay in memory.
   */
  #spillOldest(count: number): boolean {
    let remaining = Math.min(count, this.#buffer.length);
    while (remaining > 0) {
      const first = this.#buffer[0]!.seq;
      const newer = this.#files.find((f) => f.run === this.#run && f.firstSeq > first);
      const before = newer ? newer.firstSeq : Infinity;
      let n = 0;
      while (n < remaining && this.#buffer[n]!.seq < before) n++;
      let file: SpillFile;
      try {
        file = this.#spill.write(this.#run, first, this.#buffer.slice(0, n).map((p) => p.row));
      } catch (error) {
        this.#noteSpillFailure(error);
        return false;
      }
      this.#buffer.splice(0, n);
      this.#files.push(file);
      this.#files.sort(compareSpillFiles);
      remaining -= n;
      this.#noteSpill(file);
    }
    return true;
  }

  #noteSpill(file: SpillFile): void {
    if (this.#spillError !== undefined) {
      this.#logger.info({ spillDir: this.#spill.dir }, 'history spilling to disk works again');
      this.#spillError = undefined;
    }
    const level = this.#spillsThisOutage++ === 0 ? 'warn' : 'debug';
    this.#logger[level](
      { file: file.path, rows: file.rows, spilledRows: this.#spilledRows() },
      // At close, spilling is how unwritten rows are kept, not a sign that the buffer filled up.
      this.#closing
        ? 'history rows the database did not take were saved to disk for the next start'
        : 'history buffer full; the oldest rows were spilled to disk until the database takes them',
    );
  }

  /** Logged when spilling starts failing; the next try waits until memory has grown by another half bound. */
  #noteSpillFailure(error: unknown): void {
    if (this.#spillError === undefined) {
      this.#logger.error(
        { err: error, spillDir: this.#spill.dir, bufferedRows: this.#memoryRows(), maxMemoryRows: this.#settings.maxMemoryRows },
        'history rows cannot be spilled to disk; keeping them in memory beyond the buffer bound',
      );
    }
    this.#spillError = error instanceof Error ? error.message : String(error);
    this.#spillRetryAt = this.#memoryRows() + Math.ceil(this.#settings.maxBufferRows / 2);
  }

  // ---- record() helpers ----------------------------------------------------------------------------

  #seenRecently(key: string): boolean {
    // get() refreshes, so the keys asked for most often are the last to be forgotten.
    return this.#recent?.get(key) === true;
  }

  #remember(key: string): void {
    this.#recent?.set(key, true);
  }

  /** At most one log line per minute, with how many were dropped since the last one: a bug upstream would otherwise flood the log. */
  #noteInvalid(row: HistoryRow, problem: string): void {
    this.#invalidRows++;
    this.#invalidSinceLog++;
    const now = Date.now();
    if (now - this.#lastInvalidLogAt < INVALID_LOG_INTERVAL_MS) return;
    this.#lastInvalidLogAt = now;
    this.#logger.warn({ problem, row, dropped: this.#invalidSinceLog }, 'invalid history rows dropped (the table would refuse them)');
    this.#invalidSinceLog = 0;
  }

  /** Logged once per episode (memory full until a write succeeds; closed), not per row. */
  #refuse(rows: number, reason: string): void {
    this.#refusedRows += rows;
    if (this.#refusedLogged) return;
    this.#refusedLogged = true;
    this.#logger.error({ reason, refusedRows: this.#refusedRows }, 'history rows refused (not recorded)');
  }

  #reportBufferSize(): void {
    this.#onBufferSize(this.#memoryRows());
  }

  // ---- close ---------------------------------------------------------------------------------------

  async #close(): Promise<void> {
    this.#closed = true;
    this.#refusedLogged = false; // the next refusal has a new reason worth one line
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + this.#settings.closeTimeoutMs;
    const remaining = () => deadline - Date.now();
    try {
      // A write already running finishes first (it holds the oldest rows); then ours, until done,
      // failing, or out of time. No retry wait: this is the last chance.
      if (this.#flight) await withDeadline(this.#flight, remaining());
      while (remaining() > 0) {
        const outcome = await withDeadline(this.#startFlush(), remaining());
        if (outcome !== 'ok') break;
      }
    } finally {
      this.#finished = true;
      // #inFlight is set only if a write is still running past the deadline; its rows are saved too,
      // and should that write commit after all, replaying them later is a no-op.
      this.#buffer = this.#inFlight ? this.#inFlight.concat(this.#buffer) : this.#buffer;
      this.#inFlight = undefined;
      const inMemory = this.#buffer.length;
      if (inMemory > 0) {
        if (this.#spillOldest(inMemory)) {
          this.#logger.warn({ rows: inMemory, spillDir: this.#spill.dir }, 'history writer closed; unwritten rows saved to disk for the next start');
        } else {
          this.#logger.error(
            { rows: this.#buffer.length, spillDir: this.#spill.dir, reason: this.#spillError },
            'history writer closed with rows it could neither write nor save: they are lost',
          );
        }
      }
      this.#reportBufferSize();
      // The run's account, for whoever checks after a shutdown that nothing went missing. Written counts
      // new rows only: a row the table already had (a replayed spill file) is accepted but not written.
      this.#logger.info(
        { acceptedRows: this.#acceptedRows, writtenRows: this.#writtenRows, spilledRows: this.#spilledRows(), refusedRows: this.#refusedRows, invalidRows: this.#invalidRows },
        'history writer closed',
      );
    }
  }
}

interface Settings {
  readonly flushIntervalMs: number;
  readonly maxBatchRows: number;
  readonly maxBufferRows: number;
  readonly maxMemoryRows: number;
  readonly recentKeys: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly writeTimeoutMs: number;
  readonly closeTimeoutMs: number;
}

/** Defaults filled in and every number checked, with a message naming the option and the bad value. */
function settingsOf(options: HistoryWriterOptions): Settings {
  const maxBufferRows = options.maxBufferRows ?? 20_000;
  const settings: Settings = {
    flushIntervalMs: options.flushIntervalMs ?? 1_000,
    maxBatchRows: options.maxBatchRows ?? Math.min(2_000, maxBufferRows),
    maxBufferRows,
    maxMemoryRows: options.maxMemoryRows ?? 4 * maxBufferRows,
    recentKeys: options.recentKeys ?? 100_000,
    retryBaseMs: options.retryBaseMs ?? 500,
    retryMaxMs: options.retryMaxMs ?? 30_000,
    writeTimeoutMs: options.writeTimeoutMs ?? 30_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
  };
  for (const [name, value] of Object.entries(settings)) {
    const minimum = name === 'flushIntervalMs' || name === 'recentKeys' ? 0 : 1;
    if (!Number.isInteger(value) || value < minimum) {
      throw new RangeError(`HistoryWriter option ${name} must be an integer >= ${minimum}; got ${String(value)}`);
    }
  }
  if (settings.maxBatchRows > settings.maxBufferRows) {
    throw new RangeError(`HistoryWriter option maxBatchRows (${settings.maxBatchRows}) must not exceed maxBufferRows (${settings.maxBufferRows})`);
  }
  if (settings.maxMemoryRows < settings.maxBufferRows) {
    throw new RangeError(`HistoryWriter option maxMemoryRows (${settings.maxMemoryRows}) must be at least maxBufferRows (${settings.maxBufferRows})`);
  }
  if (settings.retryMaxMs < settings.retryBaseMs) {
    throw new RangeError(`HistoryWriter option retryMaxMs (${settings.retryMaxMs}) must be at least retryBaseMs (${settings.retryBaseMs})`);
  }
  return settings;
}

/** A copy with exactly the row's fields, so later changes by the caller cannot alter what is written. */
function copyRow(row: HistoryRow): HistoryRow {
  return {
    time: new Date(row.time.getTime()),
    symbol: row.symbol,
    strategy: row.strategy,
    modelVersion: row.modelVersion,
    horizon: row.horizon,
    probability: row.probability,
    confidence: row.confidence,
    signal: row.signal,
    expectedReturn: row.expectedReturn,
    intervalLevel: row.intervalLevel,
    intervalLow: row.intervalLow,
    intervalHigh: row.intervalHigh,
    featuresHash: row.featuresHash,
  };
}

/** A metrics callback that cannot break the writer. */
function guarded(callback: ((rows: number) => void) | undefined, logger: Logger, name: string): (rows: number) => void {
  if (!callback) return () => undefined;
  return (rows) => {
    try {
      callback(rows);
    } catch (error) {
      logger.warn({ err: error }, `history writer: the ${name} callback threw`);
    }
  };
}

