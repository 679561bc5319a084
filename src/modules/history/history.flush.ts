import type { Logger } from '../../infra/logger/logger.js';
import type { HistoryQueue } from './history.queue.js';
import type { SpillDirectory } from './history.spill.js';
import { historyKey, type HistoryRow, type HistorySink } from './history.types.js';

export type FlushOutcome = 'idle' | 'ok' | 'failed';

export interface FlushSettings {
  readonly flushIntervalMs: number;
  readonly maxBatchRows: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly writeTimeoutMs: number;
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

/**
 * The background loop that writes the queue's oldest batch to the database: one write at a time, a
 * timer for the next, exponential backoff while writes fail, and a bad row set aside rather than
 * blocking every row behind it.
 */
export class FlushLoop {
  readonly #queue: HistoryQueue;
  readonly #sink: HistorySink;
  readonly #spill: SpillDirectory;
  readonly #logger: Logger;
  readonly #settings: FlushSettings;
  readonly #onRowsWritten: (rows: number) => void;

  #timer: NodeJS.Timeout | undefined;
  #timerDelay = 0;
  /** The one write running, if any. */
  #flight: Promise<FlushOutcome> | undefined;
  #stopped = false;

  #failures = 0;
  #failingSince: Date | undefined;
  #lastError: string | undefined;
  #writtenRows = 0;
  #rejectedRows = 0;

  constructor(options: {
    queue: HistoryQueue;
    sink: HistorySink;
    spill: SpillDirectory;
    logger: Logger;
    settings: FlushSettings;
    onRowsWritten: (rows: number) => void;
  }) {
    this.#queue = options.queue;
    this.#sink = options.sink;
    this.#spill = options.spill;
    this.#logger = options.logger;
    this.#settings = options.settings;
    this.#onRowsWritten = options.onRowsWritten;
  }

  get state() {
    const failing = this.#failures > 0;
    return {
      consecutiveFailures: this.#failures,
      failingSince: this.#failingSince,
      lastError: this.#lastError,
      retryDelayMs: failing ? this.#retryDelay() : undefined,
      writtenRows: this.#writtenRows,
      rejectedRows: this.#rejectedRows,
    };
  }

  /** The write running, if any. */
  get flight(): Promise<FlushOutcome> | undefined {
    return this.#flight;
  }

  /** No more timers; a write already running finishes. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** After rows were accepted: write soon, or at once if a batch is full. */
  afterRecord(): void {
    // A running write schedules the next one when it ends; while failing, the retry timer is set.
    if (this.#flight || this.#failures > 0) return;
    if (this.#queue.bufferedRows >= this.#settings.maxBatchRows) {
      if (!(this.#timer && this.#timerDelay === 0)) this.arm(0);
    } else if (!this.#timer) {
      this.arm(this.#settings.flushIntervalMs);
    }
  }

  afterFlush(outcome: FlushOutcome): void {
    if (outcome === 'failed') this.arm(this.#retryDelay());
    else if (outcome === 'ok') {
      // Catching up (spill files, or a full batch waiting) goes on at once; a partial batch waits.
      const buffered = this.#queue.bufferedRows;
      if (this.#queue.spillFiles > 0 || buffered >= this.#settings.maxBatchRows) this.arm(0);
      else if (buffered > 0) this.arm(this.#settings.flushIntervalMs);
    }
  }

  /** One timer at a time; arming replaces it. Unref'd: pending rows are close()'s job, not the timer's. */
  arm(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timerDelay = delayMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.start().then((outcome) => this.afterFlush(outcome));
    }, delayMs);
    this.#timer.unref();
  }

  #retryDelay(): number {
    return retryDelay(this.#failures, this.#settings.retryBaseMs, this.#settings.retryMaxMs);
  }

  /** At most one write at a time: a caller arriving during one shares its outcome. */
  start(): Promise<FlushOutcome> {
    this.#flight ??= this.#flushOnce().finally(() => {
      this.#flight = undefined;
    });
    return this.#flight;
  }

  /** Writes the oldest pending batch. Never rejects. */
  async #flushOnce(): Promise<FlushOutcome> {
    const queue = this.#queue;
    const batch = queue.takeBatch();
    if (!batch) return 'idle';
    let written: number;
    try {
      if (batch.kind === 'file') {
        const rows = await queue.readFile(batch.file);
        if (rows === undefined) return 'ok'; // set aside or vanished; nothing to write
        written = await this.#write(rows);
        await queue.fileWritten(batch.file);
      } else {
        written = await this.#write(batch.items.map((p) => p.row));
        queue.memoryWritten();
      }
    } catch (error) {
      if (queue.finished) return 'failed'; // close() already saved these rows to disk
      queue.failed(batch);
      this.#noteFailure(error);
      queue.reportSize();
      return 'failed';
    }
    this.#noteSuccess(written);
    queue.reportSize();
    return 'ok';
  }

  /**
   * One insertMany, bounded by writeTimeoutMs. If the database refuses a row as invalid (which
   * validation in record() should make impossible), the batch is written row by row so that the one
   * bad row is set aside in rejected.ndjson instead of blocking every row behind it forever.
   */
  async #write(rows: readonly HistoryRow[]): Promise<number> {
    try {
      return await this.#timed(this.#sink.insertMany(rows));
    } catch (error) {
      if (!isRowError(error)) throw error;
      this.#logger.error(
        { err: error, rows: rows.length },
        'the database refused a history row; writing this batch row by row to set it aside',
      );
      let written = 0;
      for (const row of rows) {
        try {
          written += await this.#timed(this.#sink.insertMany([row]));
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
        {
          failedAttempts: this.#failures,
          outageMs: Date.now() - (this.#failingSince?.getTime() ?? Date.now()),
          spilledRows: this.#queue.spilledRows(),
        },
        'history writes recovered',
      );
    }
    this.#failures = 0;
    this.#failingSince = undefined;
    this.#lastError = undefined;
    this.#queue.recovered();
  }

  /** Logged once per outage (the first failure); later attempts only at debug level. */
  #noteFailure(error: unknown): void {
    this.#failures++;
    this.#lastError = error instanceof Error ? error.message : String(error);
    if (this.#failures === 1) {
      this.#failingSince = new Date();
      this.#logger.error(
        { err: error, bufferedRows: this.#queue.memoryRows(), spilledRows: this.#queue.spilledRows(), spillDir: this.#spill.dir },
        'history writes are failing; rows are kept in memory (the oldest spilled to disk past the buffer bound) and retried with backoff',
      );
    } else {
      this.#logger.debug({ err: error, attempts: this.#failures, retryInMs: this.#retryDelay() }, 'history write failed again');
    }
  }
}
