import type { PredictionRecord } from '../predictions/index.js';
import { codedError, ErrorCode } from '../../shared/errors.js';

/**
 * One subscriber's stream: first the replayed predictions (if it resumes), then live ones, which the
 * hub pushes from the moment the stream is attached, before the replay is even read. That order is
 * what makes the seam exact: anything published while history was being queried waits here, and
 * whatever the replay already delivered is skipped when the buffer drains.
 *
 * Per symbol the stream delivers each (asOf, model version) at most once and never an older asOf
 * than one delivered: that removes the seam's overlap, and also the repeats a monitor publishes after
 * a hand-over or a Redis outage (it continues from what went through Redis, which this subscriber may
 * already have had from its own instance).
 *
 * A hand-written iterator, not an async generator: graphql-ws ends a subscription with `return()`,
 * and an async generator waiting for the next event would only see it after that event arrived,
 * leaving the subscription (and its interest in symbols) alive until then.
 */
export class SignalStream implements AsyncIterableIterator<PredictionRecord> {
  #replay: PredictionRecord[] = [];
  #replayAt = 0;
  #queue: PredictionRecord[] = [];
  #queueAt = 0;
  #wake: (() => void) | undefined;
  #done = false;
  #error: Error | undefined;
  #released = false;
  readonly #delivered = new Map<string, { time: number; versions: Set<string> }>();

  constructor(
    private readonly options: {
      readonly minConfidence: number;
      /** Live events held for a consumer that does not keep up; beyond it the stream ends with an error. */
      readonly maxQueued: number;
      /** Called once when the stream ends, however it ends. */
      readonly onClose: () => void;
    },
  ) {}

  /** The recorded predictions to deliver before anything live (oldest first). */
  setReplay(records: PredictionRecord[]): void {
    this.#replay = records;
    this.#replayAt = 0;
  }

  /** From the hub: a live prediction for one of this stream's symbols. */
  push(record: PredictionRecord): void {
    if (this.#done) return;
    if (this.#queue.length - this.#queueAt >= this.options.maxQueued) {
      this.#fail(
        codedError(
          ErrorCode.UNAVAILABLE,
          `this subscriber fell more than ${this.options.maxQueued} signals behind; resubscribe with since to catch up`,
        ),
      );
      return;
    }
    this.#queue.push(record);
    this.#wakeUp();
  }

  async next(): Promise<IteratorResult<PredictionRecord>> {
    for (;;) {
      if (this.#error) {
        const error = this.#error;
        this.#error = undefined;
        this.#done = true;
        throw error;
      }
      if (this.#done) return { done: true, value: undefined };
      const record = this.#take();
      if (record) {
        if (this.#accept(record)) return { done: false, value: record };
        continue;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<PredictionRecord>> {
    this.close();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<PredictionRecord>> {
    this.close();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the stream: a waiting `next()` resolves done, `onClose` runs (once). */
  close(): void {
    this.#done = true;
    this.#error = undefined;
    this.#drop();
  }

  #fail(error: Error): void {
    this.#error = error;
    this.#drop();
  }

  #drop(): void {
    this.#queue = [];
    this.#queueAt = 0;
    this.#replay = [];
    this.#replayAt = 0;
    this.#wakeUp();
    if (!this.#released) {
      this.#released = true;
      this.options.onClose();
    }
  }

  #take(): PredictionRecord | undefined {
    if (this.#replayAt < this.#replay.length) return this.#replay[this.#replayAt++];
    if (this.#queueAt < this.#queue.length) {
      const record = this.#queue[this.#queueAt++]!;
      // Compact now and then instead of shift()ing, which is O(n) per event.
      if (this.#queueAt > 1_024 && this.#queueAt * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueAt);
        this.#queueAt = 0;
      }
      return record;
    }
    return undefined;
  }

  /** Dedupe first (a filtered-out prediction still counts as seen), then the confidence filter. */
  #accept(record: PredictionRecord): boolean {
    const time = record.asOf.getTime();
    const version = record.model.manifest.version;
    const last = this.#delivered.get(record.symbol);
    if (last && (time < last.time || (time === last.time && last.versions.has(version)))) return false;
    if (last && time === last.time) last.versions.add(version);
    else this.#delivered.set(record.symbol, { time, versions: new Set([version]) });
    return record.confidence >= this.options.minConfidence;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
