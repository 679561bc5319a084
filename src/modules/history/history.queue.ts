import { LRUCache } from 'lru-cache';
import type { Logger } from '../../infra/logger/logger.js';
import { compareSpillFiles, CorruptSpillFile, type SpillDirectory, type SpillFile } from './history.spill.js';
import { historyKey, historyRowProblem, pickHistoryRow, type HistoryRow } from './history.types.js';

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

export interface QueueSettings {
  readonly maxBatchRows: number;
  readonly maxBufferRows: number;
  readonly maxMemoryRows: number;
  readonly recentKeys: number;
}

/** An accepted row and its place in acceptance order. */
interface Pending {
  readonly seq: number;
  readonly row: HistoryRow;
}

/** The oldest pending rows: a batch from memory, or one spill file. */
export type Batch = { readonly kind: 'memory'; readonly items: Pending[] } | { readonly kind: 'file'; readonly file: SpillFile };

const INVALID_LOG_INTERVAL_MS = 60_000;

/**
 * The rows accepted and not yet written, in acceptance order across memory and spill files: accepts
 * (validates, drops recent repeats, copies, numbers), spills the oldest past the buffer bound, and
 * hands the flush loop the oldest batch. Never touches the database.
 */
export class HistoryQueue {
  readonly #spill: SpillDirectory;
  readonly #logger: Logger;
  readonly #settings: QueueSettings;
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
   * Keys accepted recently, the least recently seen forgotten first. An LRU: every prediction served
   * asks here (docs/decisions/history-write-path.md). Undefined when recentKeys is 0: nothing remembered.
   */
  readonly #recent: LRUCache<string, true> | undefined;

  #spillsThisOutage = 0;
  #spillError: string | undefined;
  /** After a failed spill, the memory size at which to try again (not at every record() call). */
  #spillRetryAt = 0;

  #acceptedRows = 0;
  #invalidRows = 0;
  #invalidSinceLog = 0;
  #lastInvalidLogAt = -Infinity;
  #refusedRows = 0;
  #refusedLogged = false;

  #closed = false;
  /** Set once close() has saved what was in memory: a write still running must then leave the rows alone. */
  #finished = false;

  constructor(options: {
    spill: SpillDirectory;
    files: SpillFile[];
    run: number;
    logger: Logger;
    settings: QueueSettings;
    onBufferSize: (rows: number) => void;
  }) {
    this.#spill = options.spill;
    this.#files = options.files;
    this.#run = options.run;
    this.#logger = options.logger;
    this.#settings = options.settings;
    this.#onBufferSize = options.onBufferSize;
    this.#recent = options.settings.recentKeys > 0 ? new LRUCache<string, true>({ max: options.settings.recentKeys }) : undefined;
  }

  /** See HistoryWriter.record(); may throw only on a bug, which the writer catches. */
  accept(rows: readonly HistoryRow[], result: RecordResult): void {
    if (this.#closed) {
      result.refused = rows.length;
      this.#refuse(rows.length, 'the history writer is closed');
      return;
    }
    for (const row of rows) {
      const problem = historyRowProblem(row);
      if (problem !== undefined) {
        result.invalid++;
        this.#noteInvalid(row, problem);
        continue;
      }
      const key = historyKey(row);
      // get() refreshes, so the keys asked for most often are the last to be forgotten.
      if (this.#recent?.get(key) === true) {
        result.duplicates++;
        continue;
      }
      if (this.memoryRows() >= this.#settings.maxMemoryRows) {
        // Not remembered: once things recover, the same prediction served again is accepted.
        result.refused++;
        this.#refuse(1, `memory holds ${this.memoryRows()} history rows and spilling to disk fails`);
        continue;
      }
      this.#recent?.set(key, true);
      this.#buffer.push({ seq: this.#nextSeq++, row: pickHistoryRow(row, new Date(row.time.getTime())) });
      result.accepted++;
      this.#acceptedRows++;
      // Inside the loop, so that one huge call spills as it goes instead of meeting maxMemoryRows.
      this.#spillOverflow();
    }
    if (result.accepted > 0) this.reportSize();
  }

  get bufferedRows(): number {
    return this.#buffer.length;
  }

  get spillFiles(): number {
    return this.#files.length;
  }

  get spillError(): string | undefined {
    return this.#spillError;
  }

  get finished(): boolean {
    return this.#finished;
  }

  get counts(): { acceptedRows: number; invalidRows: number; refusedRows: number } {
    return { acceptedRows: this.#acceptedRows, invalidRows: this.#invalidRows, refusedRows: this.#refusedRows };
  }

  /** Rows in memory: buffered plus the batch being written. */
  memoryRows(): number {
    return this.#buffer.length + (this.#inFlight?.length ?? 0);
  }

  spilledRows(): number {
    return this.#files.reduce((sum, file) => sum + file.rows, 0);
  }

  reportSize(): void {
    this.#onBufferSize(this.memoryRows());
  }

  // ---- batches -------------------------------------------------------------------------------------

  /**
   * The oldest pending rows: the oldest spill file if it is older than memory's oldest row, otherwise
   * up to maxBatchRows rows from the front of the buffer — but only rows older than every spill file,
   * since a file written while a failed batch was in flight holds rows newer than that batch.
   */
  takeBatch(): Batch | undefined {
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
  async readFile(file: SpillFile): Promise<HistoryRow[] | undefined> {
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

  /** The memory batch being written is committed: its rows leave memory. */
  memoryWritten(): void {
    this.#inFlight = undefined;
  }

  /**
   * A spill file's rows are committed: it is deleted. If deleting fails, the file is replayed again
   * by a later run, which is a no-op.
   */
  async fileWritten(file: SpillFile): Promise<void> {
    this.#files = this.#files.filter((f) => f !== file);
    await this.#spill.remove(file).catch((error: unknown) => {
      this.#logger.warn({ err: error, file: file.path }, 'history spill file written but not deleted; its replay will be a no-op');
    });
  }

  /** A batch failed: memory rows go back to the front, as they are older than everything else in memory. */
  failed(batch: Batch): void {
    if (batch.kind !== 'memory') return;
    this.#inFlight = undefined;
    this.#buffer = batch.items.concat(this.#buffer);
    this.#spillOverflow();
  }

  /** A write succeeded after trouble: the next spill or refusal is news again. */
  recovered(): void {
    this.#spillsThisOutage = 0;
    if (this.memoryRows() < this.#settings.maxMemoryRows) this.#refusedLogged = false;
    if (this.#spillError !== undefined && this.memoryRows() <= this.#settings.maxBufferRows) {
      // No row depends on the spill directory any more; the next overflow tries it again (and says so if it still fails).
      this.#logger.info({ spillDir: this.#spill.dir }, 'history rows are back within the buffer bound; no spilling needed');
      this.#spillError = undefined;
    }
  }

  // ---- spilling ------------------------------------------------------------------------------------

  /** Over the bound, spills the oldest buffered rows down to half the bound, so spills are few and files large. */
  #spillOverflow(): void {
    const memory = this.memoryRows();
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
        file = this.#spill.write(
          this.#run,
          first,
          this.#buffer.slice(0, n).map((p) => p.row),
        );
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
      { file: file.path, rows: file.rows, spilledRows: this.spilledRows() },
      // At close, spilling is how unwritten rows are kept, not a sign that the buffer filled up.
      this.#closed
        ? 'history rows the database did not take were saved to disk for the next start'
        : 'history buffer full; the oldest rows were spilled to disk until the database takes them',
    );
  }

  /** Logged when spilling starts failing; the next try waits until memory has grown by another half bound. */
  #noteSpillFailure(error: unknown): void {
    if (this.#spillError === undefined) {
      this.#logger.error(
        { err: error, spillDir: this.#spill.dir, bufferedRows: this.memoryRows(), maxMemoryRows: this.#settings.maxMemoryRows },
        'history rows cannot be spilled to disk; keeping them in memory beyond the buffer bound',
      );
    }
    this.#spillError = error instanceof Error ? error.message : String(error);
    this.#spillRetryAt = this.memoryRows() + Math.ceil(this.#settings.maxBufferRows / 2);
  }

  // ---- accept() helpers ----------------------------------------------------------------------------

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

  // ---- close ---------------------------------------------------------------------------------------

  /** From now on accept() refuses; the next refusal has a new reason worth one line. */
  close(): void {
    this.#closed = true;
    this.#refusedLogged = false;
  }

  /**
   * Saves everything still in memory to spill files, the batch being written too (should that write
   * commit after all, replaying its rows later is a no-op). Afterwards a write still running leaves
   * the rows alone.
   */
  saveAll(): void {
    this.#finished = true;
    this.#buffer = this.#inFlight ? this.#inFlight.concat(this.#buffer) : this.#buffer;
    this.#inFlight = undefined;
    const inMemory = this.#buffer.length;
    if (inMemory === 0) return;
    if (this.#spillOldest(inMemory)) {
      this.#logger.warn(
        { rows: inMemory, spillDir: this.#spill.dir },
        'history writer closed; unwritten rows saved to disk for the next start',
      );
    } else {
      this.#logger.error(
        { rows: this.#buffer.length, spillDir: this.#spill.dir, reason: this.#spillError },
        'history writer closed with rows it could neither write nor save: they are lost',
      );
    }
  }
}
