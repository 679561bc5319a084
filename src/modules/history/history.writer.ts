import type { Logger } from '../../infra/logger/logger.js';
import { withDeadline } from '../../shared/deadline.js';
import { FlushLoop, type FlushSettings } from './history.flush.js';
import { HistoryQueue, type QueueSettings, type RecordResult } from './history.queue.js';
import { SpillDirectory } from './history.spill.js';
import type { HistoryRow, HistorySink } from './history.types.js';

export { isRowError, retryDelay } from './history.flush.js';
export type { RecordResult } from './history.queue.js';

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
 * The work is split three ways: HistoryQueue (history.queue.ts) accepts rows and keeps them in
 * acceptance order across memory and spill files, FlushLoop (history.flush.ts) writes them with
 * backoff, and SpillDirectory (history.spill.ts) is the on-disk format. This class wires them together
 * and reports on them.
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

export class HistoryWriter {
  readonly #logger: Logger;
  readonly #spill: SpillDirectory;
  readonly #closeTimeoutMs: number;
  readonly #queue: HistoryQueue;
  readonly #loop: FlushLoop;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Opens the spill directory (creating it) and picks up the files a previous run left there: they are
   * written, oldest first, before anything this run accepts. Throws if the options are invalid or the
   * directory is not usable.
   */
  static async open(options: HistoryWriterOptions): Promise<HistoryWriter> {
    const settings = settingsOf(options);
    const { directory, files, run } = await SpillDirectory.open(options.spillDir);
    const queue = new HistoryQueue({
      spill: directory,
      files,
      run,
      logger: options.logger,
      settings,
      onBufferSize: guarded(options.onBufferSize, options.logger, 'onBufferSize'),
    });
    const writer = new HistoryWriter(options, settings, directory, queue);
    if (files.length > 0) {
      options.logger.info(
        { spillDir: directory.dir, files: files.length, rows: queue.spilledRows() },
        'history rows from a previous run are waiting on disk; writing them first',
      );
      writer.#loop.arm(settings.flushIntervalMs);
    }
    return writer;
  }

  private constructor(options: HistoryWriterOptions, settings: Settings, spill: SpillDirectory, queue: HistoryQueue) {
    this.#logger = options.logger;
    this.#spill = spill;
    this.#closeTimeoutMs = settings.closeTimeoutMs;
    this.#queue = queue;
    this.#loop = new FlushLoop({
      queue,
      sink: options.repository,
      spill,
      logger: options.logger,
      settings,
      onRowsWritten: guarded(options.onRowsWritten, options.logger, 'onRowsWritten'),
    });
  }

  /**
   * Takes rows over for writing. Synchronous and never throws: invalid rows, recent repeats and rows
   * refused (closed writer, memory full) are counted in the result and logged, not thrown.
   */
  record(rows: readonly HistoryRow[]): RecordResult {
    const result: RecordResult = { accepted: 0, duplicates: 0, invalid: 0, refused: 0 };
    try {
      this.#queue.accept(rows, result);
      if (result.accepted > 0) this.#loop.afterRecord();
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
      const outcome = await this.#loop.start();
      this.#loop.afterFlush(outcome);
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
    const queue = this.#queue;
    const loop = this.#loop.state;
    return {
      status: loop.consecutiveFailures > 0 || queue.spillError !== undefined ? 'degraded' : 'ok',
      bufferedRows: queue.memoryRows(),
      spilledRows: queue.spilledRows(),
      spillFiles: queue.spillFiles,
      consecutiveFailures: loop.consecutiveFailures,
      failingSince: loop.failingSince,
      lastError: loop.lastError,
      retryDelayMs: loop.retryDelayMs,
      spillError: queue.spillError,
      writtenRows: loop.writtenRows,
      invalidRows: queue.counts.invalidRows,
      refusedRows: queue.counts.refusedRows,
      rejectedRows: loop.rejectedRows,
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

  async #close(): Promise<void> {
    this.#closed = true;
    this.#queue.close();
    this.#loop.stop();
    const deadline = Date.now() + this.#closeTimeoutMs;
    const remaining = () => deadline - Date.now();
    try {
      // A write already running finishes first (it holds the oldest rows); then ours, until done,
      // failing, or out of time. No retry wait: this is the last chance.
      const running = this.#loop.flight;
      if (running) await withDeadline(running, remaining());
      while (remaining() > 0) {
        const outcome = await withDeadline(this.#loop.start(), remaining());
        if (outcome !== 'ok') break;
      }
    } finally {
      // A write still running past the deadline has its rows saved too.
      this.#queue.saveAll();
      this.#queue.reportSize();
      // The run's account, for whoever checks after a shutdown that nothing went missing. Written counts
      // new rows only: a row the table already had (a replayed spill file) is accepted but not written.
      const { acceptedRows, invalidRows, refusedRows } = this.#queue.counts;
      this.#logger.info(
        { acceptedRows, writtenRows: this.#loop.state.writtenRows, spilledRows: this.#queue.spilledRows(), refusedRows, invalidRows },
        'history writer closed',
      );
    }
  }
}

type Settings = QueueSettings & FlushSettings & { readonly closeTimeoutMs: number };

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
    throw new RangeError(
      `HistoryWriter option maxBatchRows (${settings.maxBatchRows}) must not exceed maxBufferRows (${settings.maxBufferRows})`,
    );
  }
  if (settings.maxMemoryRows < settings.maxBufferRows) {
    throw new RangeError(
      `HistoryWriter option maxMemoryRows (${settings.maxMemoryRows}) must be at least maxBufferRows (${settings.maxBufferRows})`,
    );
  }
  if (settings.retryMaxMs < settings.retryBaseMs) {
    throw new RangeError(`HistoryWriter option retryMaxMs (${settings.retryMaxMs}) must be at least retryBaseMs (${settings.retryBaseMs})`);
  }
  return settings;
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
