import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config/index.js';
import { MicroBatcher } from '../src/infra/inference/micro-batcher.js';
import { createOnnxEngine } from '../src/infra/inference/onnx.js';
import { createSyntheticMarket } from '../src/infra/market-data/synthetic.js';
import { manifestSchema } from '../src/domain/manifest.js';
import { FEATURE_NAMES, FEATURE_WINDOW, computeFeatures } from '../src/domain/features.js';
import { row, type Bench, type BenchContext } from './lib/bench.js';
import { projectRoot } from './lib/paths.js';
import { median, percentile } from './lib/stats.js';

/**
 * Predictions per second through the engine's MicroBatcher (createOnnxEngine + the gateway's default
 * batching settings) when many callers each score one row, against raw onnxruntime-node `session.run`
 * over exactly the batch sizes the batcher formed, and against one run over every row. The gap to the
 * first baseline is the batcher's own cost (queueing, copying rows together, one promise per caller,
 * slicing results apart); the gap to the second is what batch sizes cost.
 *
 * In-process on purpose: this is a library-level benchmark with no server; the callers are the
 * batcher's real callers (promises in one event loop), as in the gateway.
 */
const NAME = 'inference';
const MODEL_DIR = path.join(projectRoot, 'models/direction-1d/v1');

async function run(context: BenchContext) {
  const rows = context.smoke ? 1_000 : 10_000;
  const callers = context.smoke ? 10 : 100;
  // A repetition takes a few ms, so young-generation GCs land in some and not others: many repetitions
  // and the median, with the spread in the notes.
  const repetitions = context.smoke ? 2 : 60;
  const warmups = context.smoke ? 1 : 5;

  const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(MODEL_DIR, 'manifest.json'), 'utf8')));
  const bytes = readFileSync(path.join(MODEL_DIR, 'model.onnx'));
  const width = manifest.input.featureCount;
  const input = await featureRows(rows, manifest.features);
  // Each caller's one-row input exists before the clock starts: building it is the caller's work.
  const single = Array.from({ length: rows }, (_, i) => input.subarray(i * width, (i + 1) * width));

  const model = await createOnnxEngine().load(bytes, {
    inputName: manifest.input.name,
    outputName: manifest.output.name,
    featureCount: width,
  });
  // The raw baseline: a session created with the same options as src/infra/inference/onnx.ts.
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  const batching = loadConfig({}).inference; // the gateway's defaults
  let sizes: number[] = [];
  const batcher = new MicroBatcher(model, { ...batching, onRun: (n) => sizes.push(n) });

  const rawRuns = async (batchSizes: readonly number[]) => {
    const started = performance.now();
    let offset = 0;
    for (const size of batchSizes) {
      const feeds = {
        [manifest.input.name]: new ort.Tensor('float32', input.subarray(offset * width, (offset + size) * width), [size, width]),
      };
      await session.run(feeds, [manifest.output.name]);
      offset += size;
    }
    return performance.now() - started;
  };

  const workloads = {
    /** Every call issued in one synchronous loop, as a DataLoader batch or a burst of requests does. */
    burst: async () => {
      const started = performance.now();
      await Promise.all(single.map((one) => batcher.score(one, 1)));
      return performance.now() - started;
    },
    /** `callers` callers, each scoring its next row as soon as its previous one is answered. */
    closedLoop: async () => {
      const started = performance.now();
      const perCaller = Math.ceil(rows / callers);
      await Promise.all(
        Array.from({ length: callers }, async (_, c) => {
          for (let i = c * perCaller; i < Math.min(rows, (c + 1) * perCaller); i++) await batcher.score(single[i]!, 1);
        }),
      );
      return performance.now() - started;
    },
  };

  try {
    const results: Record<keyof typeof workloads, { batcher: number[]; raw: number[]; sizes: number[] }> = {
      burst: { batcher: [], raw: [], sizes: [] },
      closedLoop: { batcher: [], raw: [], sizes: [] },
    };
    const big: number[] = [];
    // Interleaved (batcher, raw, batcher, raw…) so drift in machine speed hits both alike.
    for (let rep = 0; rep < warmups + repetitions; rep++) {
      for (const [name, workload] of Object.entries(workloads) as Array<[keyof typeof workloads, () => Promise<number>]>) {
        sizes = [];
        const batcherMs = await workload();
        const formed = sizes;
        const rawMs = await rawRuns(formed);
        if (rep >= warmups) {
          results[name].batcher.push(rows / (batcherMs / 1000));
          results[name].raw.push(rows / (rawMs / 1000));
          results[name].sizes = formed;
        }
      }
      const bigMs = await rawRuns([rows]);
      if (rep >= warmups) big.push(rows / (bigMs / 1000));
    }

    const describeSizes = (list: readonly number[]) => {
      const counts = new Map<number, number>();
      for (const n of list) counts.set(n, (counts.get(n) ?? 0) + 1);
      return `${list.length} runs (${[...counts]
        .sort((a, b) => b[0] - a[0])
        .map(([n, k]) => `${k}×${n}`)
        .join(', ')})`;
    };
    const target = { text: '≥ 0.70× raw', meets: (_: number, ratio: number | undefined) => (ratio ?? 0) >= 0.7 };
    const burst = { value: median(results.burst.batcher), unit: 'pred/s' };
    const loop = { value: median(results.closedLoop.batcher), unit: 'pred/s' };
    return {
      rows: [
        row({
          bench: NAME,
          workload: `${rows.toLocaleString('en-US')} × score(1 row), all at once`,
          metric: 'MicroBatcher',
          figure: burst,
          baseline: { name: 'raw run, same batches', value: median(results.burst.raw), unit: 'pred/s' },
          target,
        }),
        row({
          bench: NAME,
          workload: `${callers} callers × score(1 row), ${rows.toLocaleString('en-US')} rows`,
          metric: 'MicroBatcher',
          figure: loop,
          baseline: { name: 'raw run, same batches', value: median(results.closedLoop.raw), unit: 'pred/s' },
          target,
        }),
        row({
          bench: NAME,
          workload: `${rows.toLocaleString('en-US')} × score(1 row), all at once`,
          metric: 'MicroBatcher',
          figure: burst,
          baseline: { name: `one raw run of ${rows.toLocaleString('en-US')}`, value: median(big), unit: 'pred/s' },
        }),
      ],
      notes: [
        `Model: models/direction-1d/v1 (${manifest.modelType}), ${width} features, loaded through createOnnxEngine(); MicroBatcher with the gateway's defaults (max batch ${batching.maxBatchSize}, queue delay ${batching.maxQueueDelayMs * 1000} µs).`,
        `Batches formed, all at once: ${describeSizes(results.burst.sizes)}; ${callers} callers: ${describeSizes(results.closedLoop.sizes)}.`,
        `Spread over repetitions (p10–p90), all at once: MicroBatcher ${spread(results.burst.batcher)}, raw ${spread(results.burst.raw)}; ${callers} callers: MicroBatcher ${spread(results.closedLoop.batcher)}, raw ${spread(results.closedLoop.raw)}; one run: ${spread(big)} pred/s.`,
        `Rows: real feature vectors (computeFeatures over the seeded synthetic market). Median of ${repetitions} repetitions after ${warmups} warm-up, batcher and raw interleaved; raw reruns the exact batch-size sequence the batcher formed in the same repetition, on pre-packed input (no copying).`,
      ],
    };
  } finally {
    await model.release();
    await session.release();
  }
}

function spread(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const millions = (x: number) => `${(x / 1e6).toFixed(2)}M`;
  return `${millions(percentile(sorted, 0.1))}–${millions(percentile(sorted, 0.9))}`;
}

/**
 * `count` feature rows in the model's order: real feature vectors from sliding 100-bar windows over the
 * seeded synthetic market (at most 2,000 distinct ones, repeated), so the model sees realistic inputs.
 */
async function featureRows(count: number, modelFeatures: readonly string[]): Promise<Float32Array> {
  const symbols = ['AAPL', 'MSFT', 'NVDA', 'JPM', 'XOM'];
  const windows = Math.ceil(Math.min(count, 2_000) / symbols.length);
  const market = createSyntheticMarket({
    symbols,
    seed: 3,
    historyBars: FEATURE_WINDOW + windows,
    startTime: new Date('2024-01-02T00:00:00Z'),
  });
  const bars = await market.fetchBars(symbols, { lookback: FEATURE_WINDOW + windows });
  const order = modelFeatures.map((name) => FEATURE_NAMES.indexOf(name));
  const distinct: Float64Array[] = [];
  for (const list of bars.values()) {
    for (let end = FEATURE_WINDOW; end <= list.length && distinct.length < count; end++)
      distinct.push(computeFeatures(list.slice(end - FEATURE_WINDOW, end)).values);
  }
  const out = new Float32Array(count * order.length);
  for (let i = 0; i < count; i++) {
    const values = distinct[i % distinct.length]!;
    order.forEach((feature, column) => (out[i * order.length + column] = values[feature]!));
  }
  return out;
}

export default { name: NAME, title: 'MicroBatcher throughput for one-row callers vs raw onnxruntime-node runs', run } satisfies Bench;
