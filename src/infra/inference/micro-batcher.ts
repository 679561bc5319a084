import type { LoadedModel } from './engine.js';

/**
 * Coalesces concurrent inference requests for one model into few runs, like Triton's dynamic batcher:
 * requests queue until `maxBatchSize` rows are waiting or the oldest has waited `maxQueueDelayMs`, then
 * all queued rows go through the model together. With a delay of 0 the queue still flushes only after
 * the current turn of the event loop, so everything requested in the same tick (a DataLoader batch,
 * several resolvers) shares one run.
 *
 * A batch larger than `maxBatchSize` is split into runs of at most that size, so one run holds the
 * event loop for a bounded time however large the request. {@link MicroBatcher.scoreAsOneRun} is the
 * one explicit exception, for callers that have gathered a whole request's rows themselves.
 */
export interface MicroBatcherOptions {
  readonly maxBatchSize: number;
  /** At most 1 ms: longer would add latency without adding rows at realistic request rates. */
  readonly maxQueueDelayMs: number;
  /** Called after each run, for metrics. */
  readonly onRun?: (rows: number, seconds: number) => void;
}

interface Pending {
  readonly input: Float32Array;
  readonly rows: number;
  readonly resolve: (output: Float32Array) => void;
  readonly reject: (error: unknown) => void;
}

export class MicroBatcher {
  #queue: Pending[] = [];
  #queuedRows = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(
    private readonly model: LoadedModel,
    private readonly options: MicroBatcherOptions,
  ) {
    if (!(options.maxBatchSize >= 1)) throw new Error(`maxBatchSize must be at least 1, got ${options.maxBatchSize}`);
    if (!(options.maxQueueDelayMs >= 0 && options.maxQueueDelayMs <= 1)) {
      throw new Error(`maxQueueDelayMs must be between 0 and 1, got ${options.maxQueueDelayMs}`);
    }
  }

  /** Scores `rows` packed feature rows; resolves with one probability per row, in order. */
  score(input: Float32Array, rows: number): Promise<Float32Array> {
    const featureCount = this.model.signature.featureCount;
    if (input.length !== rows * featureCount) {
      return Promise.reject(
        new Error(`input holds ${input.length} values; ${rows} rows × ${featureCount} features = ${rows * featureCount}`),
      );
    }
    if (rows === 0) return Promise.resolve(new Float32Array(0));
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, rows, resolve, reject });
      this.#queuedRows += rows;
      if (this.#queuedRows >= this.options.maxBatchSize) this.#flushNow();
      else
        this.#timer ??=
          this.options.maxQueueDelayMs > 0
            ? setTimeout(() => this.#flushNow(), this.options.maxQueueDelayMs)
            : setImmediate(() => this.#flushNow());
    });
  }

  /**
   * The explicit large-batch path: scores `rows` packed rows as ONE inference run however many there
   * are (`maxBatchSize` does not split it), right away and alone (not merged with queued requests).
   *
   * For a caller that has already batched a whole request, such as explanations (every perturbed input
   * of every symbol of a request, thousands of rows), where splitting would only multiply runs. The run
   * holds the event loop for its whole duration (onnxruntime-node runs on the calling thread), so the
   * caller is responsible for bounding `rows`. Counted by `onRun` like any other run.
   */
  async scoreAsOneRun(input: Float32Array, rows: number): Promise<Float32Array> {
    const featureCount = this.model.signature.featureCount;
    if (input.length !== rows * featureCount) {
      throw new Error(`input holds ${input.length} values; ${rows} rows × ${featureCount} features = ${rows * featureCount}`);
    }
    if (rows === 0) return new Float32Array(0);
    const started = performance.now();
    const output = await this.model.run(input, rows);
    this.options.onRun?.(rows, (performance.now() - started) / 1000);
    return output;
  }

  #flushNow(): void {
    if (this.#timer) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = undefined;
    }
    const batch = this.#queue;
    const totalRows = this.#queuedRows;
    this.#queue = [];
    this.#queuedRows = 0;
    if (batch.length > 0) void this.#run(batch, totalRows);
  }

  async #run(batch: Pending[], totalRows: number): Promise<void> {
    const featureCount = this.model.signature.featureCount;
    try {
      const input = batch.length === 1 ? batch[0]!.input : concat(batch, totalRows * featureCount);
      const output = new Float32Array(totalRows);
      for (let start = 0; start < totalRows; start += this.options.maxBatchSize) {
        const rows = Math.min(this.options.maxBatchSize, totalRows - start);
        const started = performance.now();
        const chunk = await this.model.run(input.subarray(start * featureCount, (start + rows) * featureCount), rows);
        this.options.onRun?.(rows, (performance.now() - started) / 1000);
        output.set(chunk, start);
      }
      let offset = 0;
      for (const pending of batch) {
        // `output` is this run's own array, so callers can share it through views instead of copies.
        pending.resolve(output.subarray(offset, offset + pending.rows));
        offset += pending.rows;
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}

function concat(batch: readonly Pending[], length: number): Float32Array {
  const input = new Float32Array(length);
  let offset = 0;
  for (const pending of batch) {
    input.set(pending.input, offset);
    offset += pending.input.length;
  }
  return input;
}
