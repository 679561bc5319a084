import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Bar } from '../infra/market-data/market-data.js';
import type { Manifest } from '../domain/manifest.js';
import type { StrategyDefinition } from '../domain/strategies.js';
import { buildManifest, exportModel } from './package.js';
import { DEFAULT_PERIODS, trainDirectionModel, type ModelFamily, type TrainingPeriods, type TrainingResult } from './train.js';

/**
 * One model version from bars to files: training, ONNX export and manifest, then the two files in the
 * version's directory. `npm run train` (src/cli/train.ts) and the scheduled retraining's child process
 * (retrain-worker.ts) both make versions through here, so a scheduled version is exactly what the CLI
 * would have written from the same bars.
 */
export interface VersionSpec {
  readonly strategy: StrategyDefinition;
  readonly version: string;
  readonly family: ModelFamily;
  readonly createdAt: Date;
  readonly bars: ReadonlyMap<string, readonly Bar[]>;
  /** Provenance for the manifest's `data.source`, e.g. `bars store (postgres)`. */
  readonly source: string;
  /** sha256 over the input files, when trained from files. */
  readonly dataSha256?: string | undefined;
  readonly periods?: TrainingPeriods;
  readonly onStep?: (step: string) => void;
}

export interface TrainedVersion {
  readonly result: TrainingResult;
  readonly onnx: Uint8Array;
  readonly manifest: Manifest;
}

export function trainVersion(spec: VersionSpec): TrainedVersion {
  const result: TrainingResult = trainDirectionModel(spec.bars, spec.strategy, spec.periods ?? DEFAULT_PERIODS, spec.onStep, {
    family: spec.family,
  });
  const onnx = exportModel(result, { strategy: spec.strategy.name, version: spec.version });
  const manifest = buildManifest({
    strategy: spec.strategy,
    version: spec.version,
    createdAt: spec.createdAt,
    result,
    onnx,
    bars: spec.bars,
    source: spec.source,
    dataSha256: spec.dataSha256,
  });
  return { result, onnx, manifest };
}

/** Writes `model.onnx` and `manifest.json` into `directory` (created if missing). */
export async function writeVersion(directory: string, trained: Pick<TrainedVersion, 'onnx' | 'manifest'>): Promise<void> {
  await mkdir(directory, { recursive: true });
  await writeFile(path.join(directory, 'model.onnx'), trained.onnx);
  await writeFile(path.join(directory, 'manifest.json'), `${JSON.stringify(trained.manifest, null, 2)}\n`);
}
