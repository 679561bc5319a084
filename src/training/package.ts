import { createHash } from 'node:crypto';
import type { Bar } from '../infra/market-data/market-data.js';
import { manifestSchema, type Manifest } from '../domain/manifest.js';
import { FEATURE_NAMES, FEATURE_SET_VERSION } from '../domain/features.js';
import type { StrategyDefinition } from '../domain/strategies.js';
import { exportMlpToOnnx } from './onnx-export.js';
import type { TrainingResult } from './train.js';

/**
 * Turns a training result into what the gateway serves: the ONNX bytes (a logistic regression is one
 * Gemm + Sigmoid, with the standardization folded in) and the manifest that describes them.
 */
export function exportModel(result: TrainingResult, metadata: { strategy: string; version: string }): Uint8Array {
  return exportMlpToOnnx({
    inputMean: result.model.mean,
    inputScale: result.model.scale,
    layers: [{ weights: [result.model.weights], bias: [result.model.bias], activation: 'none' }],
    outputActivation: 'sigmoid',
    metadata: { ...metadata, featureSet: FEATURE_SET_VERSION, features: FEATURE_NAMES.join(',') },
  });
}

export interface ManifestInput {
  strategy: StrategyDefinition;
  version: string;
  createdAt: Date;
  result: TrainingResult;
  onnx: Uint8Array;
  bars: ReadonlyMap<string, readonly Bar[]>;
  source: string;
  /** sha256 over the input files, when trained from files. */
  dataSha256?: string | undefined;
}

/** The manifest for an exported model, validated against the schema the gateway loads it with. */
export function buildManifest(input: ManifestInput): Manifest {
  const { strategy, result } = input;
  let bars = 0;
  let from = Infinity;
  let to = -Infinity;
  for (const list of input.bars.values()) {
    bars += list.length;
    if (list.length) {
      from = Math.min(from, list[0]!.time.getTime());
      to = Math.max(to, list.at(-1)!.time.getTime());
    }
  }
  return manifestSchema.parse({
    strategy: strategy.name,
    version: input.version,
    horizon: strategy.horizon,
    horizonBars: strategy.horizonBars,
    createdAt: input.createdAt.toISOString(),
    description: strategy.description,
    modelType: 'logistic-regression (L2, Newton/IRLS), standardization folded into the graph',
    featureSet: FEATURE_SET_VERSION,
    features: [...FEATURE_NAMES],
    input: { name: 'features', featureCount: FEATURE_NAMES.length },
    output: { name: 'probability' },
    signal: result.signal,
    calibration: result.calibration,
    interval: result.interval,
    offlineMetrics: result.offlineMetrics,
    featureStats: result.featureStats,
    driftReference: result.driftReference,
    training: { ...result.training, hyperparameters: { l2: result.l2, newtonIterations: result.model.iterations } },
    data: {
      source: input.source,
      symbols: [...input.bars.keys()].sort(),
      bars,
      from: new Date(from).toISOString().slice(0, 10),
      to: new Date(to).toISOString().slice(0, 10),
      ...(input.dataSha256 ? { sha256: input.dataSha256 } : {}),
    },
    sha256: createHash('sha256').update(input.onnx).digest('hex'),
  });
}
