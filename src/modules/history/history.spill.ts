import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { historyRowProblem, pickHistoryRow, type HistoryField, type HistoryRow } from './history.types.js';
import { UNKNOWN_MARKET } from '../../infra/market-data/market-data.js';

/**
 * The spill directory: history rows the database could not take yet, kept on disk until it can.
 *
 * Each spill is one NDJSON file holding rows that were accepted consecutively, named
 * `spill-<run>-<first seq>-<rows>.ndjson`: `run` numbers the writer's lifetimes (one more than the
 * highest run on disk when it opened) and `seq` numbers the rows a run accepted, so sorting files by
 * (run, first seq) is sorting them by acceptance. The row count in the name saves reading every file
 * at start-up just to report how much is waiting.
 *
 * A file appears whole or not at all: it is written under a `.tmp-` name, fsynced, then renamed (a
 * rename within a directory is atomic), and the directory is fsynced so the rename itself survives a
 * power cut. Leftover `.tmp-` files are from a crash mid-write, when the same rows were still in the
 * crashed process's memory and therefore gone; they are deleted at start-up.
 *
 * One writer per directory: two processes sharing one would replay each other's files (harmless,
 * inserts are idempotent) and race on deleting them. Give each instance its own directory.
 */
export interface SpillFile {
  readonly path: string;
  readonly run: number;
  readonly firstSeq: number;
  readonly rows: number;
}

const SPILL_NAME = /^spill-(\d+)-(\d+)-(\d+)\.ndjson$/;
const ANY_SPILL_NAME = /^spill-(\d+)-/;
const TEMP_PREFIX = '.tmp-';
/** Rows the database refused as invalid (a bug: the writer validates first); kept for a human, never replayed. */
export const REJECTED_FILE = 'rejected.ndjson';

/** Acceptance order: earlier runs first, then by first row. */
export function compareSpillFiles(a: SpillFile, b: SpillFile): number {
  return a.run - b.run || a.firstSeq - b.firstSeq;
}

export class SpillDirectory {
  private constructor(readonly dir: string) {}

  /**
   * Creates `dir` if needed and lists the spill files a previous run left, in acceptance order, with
   * the run number this lifetime should use. Throws if the directory cannot be created or read: the
   * writer cannot promise durability without it, and a misconfigured path should fail at start-up.
   */
  static async open(dir: string): Promise<{ directory: SpillDirectory; files: SpillFile[]; run: number }> {
    const resolved = path.resolve(dir);
    try {
      await mkdir(resolved, { recursive: true });
      const names = await readdir(resolved);
      const files: SpillFile[] = [];
      let lastRun = 0;
      for (const name of names) {
        if (name.startsWith(TEMP_PREFIX)) {
          await rm(path.join(resolved, name), { force: true });
          continue;
        }
        const run = ANY_SPILL_NAME.exec(name);
        if (run) lastRun = Math.max(lastRun, Number(run[1])); // quarantined files too, so no new name can collide with theirs
        const match = SPILL_NAME.exec(name);
        if (match)
          files.push({ path: path.join(resolved, name), run: Number(match[1]), firstSeq: Number(match[2]), rows: Number(match[3]) });
      }
      return { directory: new SpillDirectory(resolved), files: files.sort(compareSpillFiles), run: lastRun + 1 };
    } catch (error) {
      throw new Error(`history spill directory ${resolved} is not usable: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Writes `rows` (accepted consecutively, the first one numbered `firstSeq` in `run`) as one file,
   * atomically and durably; synchronous so that a row is either still in memory or on disk, never in
   * between. Throws on any I/O error, leaving no file behind.
   */
  write(run: number, firstSeq: number, rows: readonly HistoryRow[]): SpillFile {
    const name = `spill-${String(run).padStart(6, '0')}-${String(firstSeq).padStart(12, '0')}-${rows.length}.ndjson`;
    const finalPath = path.join(this.dir, name);
    const tempPath = path.join(this.dir, TEMP_PREFIX + name);
    // Recreated every time: someone may have removed the directory since start-up.
    mkdirSync(this.dir, { recursive: true });
    try {
      const fd = openSync(tempPath, 'w');
      try {
        writeFileSync(fd, rows.map(serialize).join('')); // loops until every byte is written, unlike writeSync
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tempPath, finalPath);
    } catch (error) {
      rmSync(tempPath, { force: true });
      throw error;
    }
    this.#syncDirectory();
    return { path: finalPath, run, firstSeq, rows: rows.length };
  }

  /**
   * The rows of a spill file, in the order they were accepted. Resolves undefined if the file is gone;
   * rejects with a `CorruptSpillFile` if any line is not a valid row (our writes are atomic, so that
   * means the disk or a person changed it), and with the I/O error otherwise.
   */
  async read(file: SpillFile): Promise<HistoryRow[] | undefined> {
    let text: string;
    try {
      text = await readFile(file.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const rows: HistoryRow[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '') continue;
      const row = parse(line);
      if (typeof row === 'string') throw new CorruptSpillFile(`${file.path} line ${i + 1}: ${row}`);
      rows.push(row);
    }
    return rows;
  }

  /** Deletes a replayed file; a file already gone is fine. */
  async remove(file: SpillFile): Promise<void> {
    await rm(file.path, { force: true });
  }

  /** Moves a corrupt file aside (`….corrupt`), out of the replay but kept for a human. */
  async quarantine(file: SpillFile): Promise<string> {
    const target = `${file.path}.corrupt`;
    await rename(file.path, target);
    return target;
  }

  /** Appends a row the database refused, with why, to `rejected.ndjson`. Throws on I/O errors. */
  appendRejected(row: HistoryRow, reason: string): string {
    const target = path.join(this.dir, REJECTED_FILE);
    mkdirSync(this.dir, { recursive: true });
    appendFileSync(target, JSON.stringify({ at: new Date().toISOString(), reason, row: toJson(row) }) + '\n');
    return target;
  }

  /** Makes a rename durable. Best effort: some platforms cannot open a directory for fsync. */
  #syncDirectory(): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.dir, 'r');
      fsyncSync(fd);
    } catch {
      // The file itself is fsynced; only the rename could be lost, and only on a power cut.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

export class CorruptSpillFile extends Error {
  override readonly name = 'CorruptSpillFile';
}

/** A row as one JSON line; the time as epoch milliseconds, which round-trips exactly. */
function serialize(row: HistoryRow): string {
  return JSON.stringify(toJson(row)) + '\n';
}

/** The row's JSON object: exactly its fields, in column order, the time as epoch milliseconds. */
function toJson(row: HistoryRow): Record<string, unknown> {
  return { ...pickHistoryRow(row, row.time), time: row.time.getTime() };
}

/** The row on one line, or why it is not one. */
function parse(line: string): HistoryRow | string {
  let value: Record<HistoryField, unknown>;
  try {
    value = JSON.parse(line) as Record<HistoryField, unknown>;
  } catch (error) {
    return (error as Error).message;
  }
  if (typeof value !== 'object' || value === null || typeof value.time !== 'number') return 'not a history row';
  // A line spilled by a gateway from before predictions carried their market: kept, labelled as
  // migration 0009 labels the rows it cannot vouch for, rather than set aside.
  const time = new Date(value.time);
  const row = pickHistoryRow(value.marketSource === undefined ? { ...value, marketSource: UNKNOWN_MARKET } : value, time);
  return historyRowProblem(row) ?? row;
}
