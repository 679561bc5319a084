import { createHash } from 'node:crypto';
import type { Bar } from '../infra/market-data/market-data.js';
import { manifestSchema, type Manifest } from '../domain/manifest.js';
import { FEATURE_NAMES, FEATURE_SET_VERSION } from '../domain/features.js';
import type { StrategyDefinition } from '../domain/strategies.js';
import { exportMlpToOnnx, exportTreeEnsembleToOnnx } from './onnx-export.js';
import type { TrainingResult } from './train.js';

/**
 * Turns a training result into what the gateway serves: the ONNX bytes (a logistic regression is one
 * Gemm + Sigmoid, with the standardization folded in; boosted trees an ai.onnx.ml TreeEnsembleRegressor
 * + Sigmoid, with the same input and output) and the manifest that describes them.
 */
export function exportModel(result: TrainingResult, metadata: { strategy: string; version: string }): Uint8Array {
  const meta = { ...metadata, featureSet: FEATURE_SET_VERSION, features: FEATURE_NAMES.join(',') };
  if (result.family === 'gbt') {
    return exportTreeEnsembleToOnnx({
      // Early stopping may keep no tree (none beat the base rate on validation): that constant is one leaf of 0.
      trees: result.model.trees.length ? result.model.trees : [{ feature: [-1], threshold: [0], left: [-1], right: [-1], value: [0] }],
      baseScore: result.model.baseScore,
      featureCount: FEATURE_NAMES.length,
      metadata: { ...meta, family: 'gbt' },
    });
  }
  return exportMlpToOnnx({
    inputMean: result.model.mean,
    inputScale: result.model.scale,
    layers: [{ weights: [result.model.weights], bias: [result.model.bias], activation: 'none' }],
    outputActivation: 'sigmoid',
    metadata: meta,
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
    ...familyFields(result),
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
    training: { ...result.training, hyperparameters: hyperparameters(result) },
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

/** The logistic fields are written exactly as before families existed (no `family`), so regenerating a committed model gives the same bytes. */
function familyFields(result: TrainingResult): { modelType: string; family?: 'gbt' } {
  if (result.family === 'logistic') return { modelType: 'logistic-regression (L2, Newton/IRLS), standardization folded into the graph' };
  const o = result.model.options;
  return {
    modelType: `gradient-boosted trees (logistic loss, Newton leaves, depth ≤ ${o.maxDepth} picked on the validation period, tree count early-stopped on the validation period), ai.onnx.ml TreeEnsembleRegressor + Sigmoid`,
    family: 'gbt',
  };
}

function hyperparameters(result: TrainingResult): Record<string, number> {
  if (result.family === 'logistic') return { l2: result.l2, newtonIterations: result.model.iterations };
  const { options: o, trees, validationLogLoss } = result.model;
  return {
    trees: trees.length,
    treesTried: validationLogLoss.length - 1,
    maxTrees: o.maxTrees,
    maxDepth: o.maxDepth,
    learningRate: o.learningRate,
    minSamplesLeaf: o.minSamplesLeaf,
    leafL2: o.l2,
    bins: o.bins,
    patience: o.patience,
    validationLogLoss: validationLogLoss[trees.length]!,
  };
}
