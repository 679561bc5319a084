import type { Bar, QualityReason } from '../infra/market-data/market-data.js';
import type { ModelFamily } from './train.js';

/**
 * The messages between the gateway's scheduled retraining (src/modules/retraining) and the child
 * process that trains (retrain-worker.ts), over Node's IPC channel with `serialization: 'advanced'`
 * (structured clone: typed arrays travel as bytes, not JSON).
 *
 * Parent → child, in this order: one `job`, any number of `bars` (one symbol each, as the parent reads
 * them from the bars store), then `train`. Child → parent: any number of `step` (progress, for the
 * log), then exactly one of `written` (both files are in `job.directory`) or `failed`, then it exits.
 * The child never opens the database (an embedded PGlite admits one process) and never touches the
 * models directory beyond `job.directory`, a staging directory the parent moves into place after
 * verifying it.
 */
export interface RetrainJob {
  readonly strategy: string;
  readonly version: string;
  readonly family: ModelFamily;
  /** ISO time for the manifest's `createdAt`. */
  readonly createdAt: string;
  /** Where to write `model.onnx` and `manifest.json`. */
  readonly directory: string;
  /** The manifest's `data.source`. */
  readonly source: string;
}

export type ToWorker =
  | { readonly type: 'job'; readonly job: RetrainJob }
  | { readonly type: 'bars'; readonly symbol: string; readonly bars: BarColumns }
  | { readonly type: 'train' };

export type FromWorker =
  { readonly type: 'step'; readonly step: string } | { readonly type: 'written' } | { readonly type: 'failed'; readonly message: string };

/** One symbol's bars as columns: a few typed arrays instead of thousands of objects to clone. */
export interface BarColumns {
  readonly time: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly adjClose: Float64Array;
  readonly volume: Float64Array;
  /** Per bar; mostly one value, so it costs little. */
  readonly source: readonly string[];
  /** Per bar: its quality flags joined by `,` (`''`: checked and clean); null: never checked. */
  readonly quality: ReadonlyArray<string | null>;
}

export function barsToColumns(bars: readonly Bar[]): BarColumns {
  const column = (pick: (bar: Bar) => number) => Float64Array.from(bars, pick);
  return {
    time: column((b) => b.time.getTime()),
    open: column((b) => b.open),
    high: column((b) => b.high),
    low: column((b) => b.low),
    close: column((b) => b.close),
    adjClose: column((b) => b.adjClose),
    volume: column((b) => b.volume),
    source: bars.map((b) => b.source),
    quality: bars.map((b) => (b.quality === undefined ? null : b.quality.join(','))),
  };
}

export function columnsToBars(symbol: string, c: BarColumns): Bar[] {
  return Array.from(c.time, (time, i) => {
    const quality = c.quality[i];
    return {
      symbol,
      time: new Date(time),
      open: c.open[i]!,
      high: c.high[i]!,
      low: c.low[i]!,
      close: c.close[i]!,
      adjClose: c.adjClose[i]!,
      volume: c.volume[i]!,
      source: c.source[i]!,
      ...(quality !== null && quality !== undefined && { quality: (quality ? quality.split(',') : []) as QualityReason[] }),
    };
  });
}
