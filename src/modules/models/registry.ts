import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceEngine, LoadedModel } from '../../infra/inference/engine.js';
import { MicroBatcher, type MicroBatcherOptions } from '../../infra/inference/micro-batcher.js';
import { readOnnxMetadata } from '../../infra/inference/onnx-inspect.js';
import type { Logger } from '../../infra/logger/logger.js';
import { FEATURE_NAMES, FEATURE_SET_VERSION } from '../predictions/features.js';
import { findStrategy } from '../predictions/strategies.js';
import { manifestSchema, type Manifest } from './manifest.js';

/**
 * Every model version found in the models directory, loaded once at start-up (never per request).
 *
 * A version is served only if all of this holds: `manifest.json` parses and validates; `model.onnx`
 * matches the manifest's sha256; the ONNX graph has the manifest's input (with the same feature count)
 * and output; the strategy is known; the features are ours (same feature-set version, names we compute);
 * and a smoke inference returns one probability in [0, 1] per row. Anything else is refused with one
 * log line naming the file and the reason, and the other versions keep serving.
 */
export interface ModelVersionEntry {
  readonly manifest: Manifest;
  readonly directory: string;
  readonly model: LoadedModel;
  readonly batcher: MicroBatcher;
  /** For each of the model's inputs, its index in our feature vector. */
  readonly featureOrder: readonly number[];
}

export interface RefusedModel {
  readonly directory: string;
  readonly reason: string;
}

export class ModelRegistry {
  private constructor(
    private readonly versions: ReadonlyMap<string, readonly ModelVersionEntry[]>,
    readonly refused: readonly RefusedModel[],
  ) {}

  static async load(options: {
    directory: string;
    engine: InferenceEngine;
    batching: Omit<MicroBatcherOptions, 'onRun'>;
    onRun?: (manifest: Manifest, rows: number, seconds: number) => void;
    logger: Logger;
  }): Promise<ModelRegistry> {
    const { logger } = options;
    const versions = new Map<string, ModelVersionEntry[]>();
    const refused: RefusedModel[] = [];
    for (const directory of await findVersionDirectories(options.directory)) {
      try {
        const entry = await loadVersion(directory, options);
        // One directory per strategy/version (loadVersion checks the names), so versions cannot collide.
        const list = versions.get(entry.manifest.strategy) ?? [];
        list.push(entry);
        versions.set(entry.manifest.strategy, list);
        logger.info({ strategy: entry.manifest.strategy, version: entry.manifest.version }, 'model loaded');
      } catch (error) {
        const reason = (error as Error).message;
        refused.push({ directory, reason });
        logger.error({ directory, reason }, `model refused: ${path.relative(process.cwd(), directory)}: ${reason}`);
      }
    }
    // By instant, not by text: "…T00:00:00Z" and "…T00:00:00.500Z" do not sort as strings.
    for (const list of versions.values()) list.sort((a, b) => Date.parse(a.manifest.createdAt) - Date.parse(b.manifest.createdAt));
    return new ModelRegistry(versions, refused);
  }

  strategies(): string[] {
    return [...this.versions.keys()].sort();
  }

  versionsOf(strategy: string): readonly ModelVersionEntry[] {
    return this.versions.get(strategy) ?? [];
  }

  /** The version serving a strategy: the newest loaded one. (Activation and rollback come with the model lifecycle.) */
  active(strategy: string): ModelVersionEntry | undefined {
    return this.versions.get(strategy)?.at(-1);
  }

  async close(): Promise<void> {
    for (const list of this.versions.values()) for (const entry of list) await entry.model.release();
  }
}

async function findVersionDirectories(root: string): Promise<string[]> {
  const found: string[] = [];
  let strategies;
  try {
    strategies = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  for (const strategy of strategies.filter((d) => d.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const versions = await readdir(path.join(root, strategy.name), { withFileTypes: true });
    for (const version of versions.filter((d) => d.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      found.push(path.join(root, strategy.name, version.name));
    }
  }
  return found;
}

async function loadVersion(
  directory: string,
  options: Parameters<typeof ModelRegistry.load>[0],
): Promise<ModelVersionEntry> {
  const manifest = await readManifest(directory);
  const [strategyDirectory, versionDirectory] = [path.basename(path.dirname(directory)), path.basename(directory)];
  if (strategyDirectory !== manifest.strategy || versionDirectory !== manifest.version) {
    throw new Error(`manifest says ${manifest.strategy}/${manifest.version}, but the files are in ${strategyDirectory}/${versionDirectory}`);
  }
  if (!findStrategy(manifest.strategy)) throw new Error(`unknown strategy "${manifest.strategy}"`);
  if (manifest.featureSet !== FEATURE_SET_VERSION) {
    throw new Error(`trained on feature set "${manifest.featureSet}", this gateway computes "${FEATURE_SET_VERSION}"`);
  }
  const featureOrder = manifest.features.map((name) => FEATURE_NAMES.indexOf(name));
  const unknown = manifest.features.filter((_, i) => featureOrder[i] === -1);
  if (unknown.length) throw new Error(`uses features this gateway does not compute: ${unknown.join(', ')}`);
  if (manifest.input.featureCount !== manifest.features.length) {
    throw new Error(`input.featureCount is ${manifest.input.featureCount} but ${manifest.features.length} features are listed`);
  }

  const bytes = await readFile(path.join(directory, 'model.onnx')).catch((error: NodeJS.ErrnoException) => {
    throw new Error(error.code === 'ENOENT' ? 'model.onnx is missing' : `cannot read model.onnx: ${error.message}`);
  });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== manifest.sha256) throw new Error(`model.onnx has sha256 ${sha256.slice(0, 12)}…, the manifest says ${manifest.sha256.slice(0, 12)}… (corrupt or replaced file)`);

  const onnx = readOnnxMetadata(bytes);
  const input = onnx.inputs.find((i) => i.name === manifest.input.name);
  if (!input) throw new Error(`model.onnx has no input "${manifest.input.name}" (it has: ${onnx.inputs.map((i) => i.name).join(', ')})`);
  if (input.shape.length !== 2 || (typeof input.shape[1] === 'number' && input.shape[1] !== manifest.input.featureCount)) {
    throw new Error(`model.onnx input "${input.name}" has shape [${input.shape.join(', ')}], the manifest expects [batch, ${manifest.input.featureCount}]`);
  }
  if (!onnx.outputs.some((o) => o.name === manifest.output.name)) {
    throw new Error(`model.onnx has no output "${manifest.output.name}" (it has: ${onnx.outputs.map((o) => o.name).join(', ')})`);
  }

  const model = await options.engine.load(bytes, {
    inputName: manifest.input.name,
    outputName: manifest.output.name,
    featureCount: manifest.input.featureCount,
    ...(manifest.output.probabilityIndex !== undefined && { probabilityIndex: manifest.output.probabilityIndex }),
  });
  try {
    const smoke = await model.run(new Float32Array(2 * manifest.input.featureCount).fill(0.01), 2);
    if (!Array.from(smoke).every((p) => p >= 0 && p <= 1)) throw new Error(`smoke inference returned [${Array.from(smoke).join(', ')}], not probabilities`);
  } catch (error) {
    await model.release();
    throw new Error(`smoke inference failed: ${(error as Error).message}`);
  }
  const batcher = new MicroBatcher(model, {
    ...options.batching,
    onRun: (rows, seconds) => options.onRun?.(manifest, rows, seconds),
  });
  return { manifest, directory, model, batcher, featureOrder };
}

async function readManifest(directory: string): Promise<Manifest> {
  let text;
  try {
    text = await readFile(path.join(directory, 'manifest.json'), 'utf8');
  } catch (error) {
    throw new Error((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'manifest.json is missing' : `cannot read manifest.json: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`manifest.json is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`manifest.json is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
