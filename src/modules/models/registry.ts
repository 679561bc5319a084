import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { InferenceEngine, LoadedModel } from '../../infra/inference/engine.js';
import { MicroBatcher, type MicroBatcherOptions } from '../../infra/inference/micro-batcher.js';
import { readOnnxMetadata } from '../../infra/inference/onnx-inspect.js';
import type { Logger } from '../../infra/logger/logger.js';
import { createSyntheticMarket } from '../../infra/market-data/synthetic.js';
import { FEATURE_NAMES, FEATURE_SET_VERSION, FEATURE_WINDOW, computeFeatures } from '../../domain/features.js';
import { VERSION_PATTERN } from '../../domain/names.js';
import { findStrategy } from '../../domain/strategies.js';
import { applyPlatt } from '../../domain/calibration.js';
import { manifestSchema, type Manifest } from '../../domain/manifest.js';

/**
 * Every model version found in the models directory, each loaded once (never per request), and which
 * of them serves each strategy (and which runs in shadow).
 *
 * A version is served only if all of this holds: `manifest.json` parses and validates; `model.onnx`
 * matches the manifest's sha256; the ONNX graph has the manifest's input (with the same feature count)
 * and output; the strategy is known; the features are ours (same feature-set version, names we compute);
 * and a smoke inference on known inputs returns one finite probability in [0, 1] per row. Anything else
 * is refused with one log line naming the file and the reason, and the other versions keep serving.
 * Hidden directories (a name starting with `.`, such as the scheduled retraining's `.staging`) are not
 * versions: they are never scanned.
 *
 * Which version serves is a choice made elsewhere (the lifecycle, from the database): until it is made,
 * the newest version by `createdAt` serves. A switch replaces one immutable {@link Serving} object, so a
 * caller that read it once (a prediction batch) keeps a consistent pair for as long as it runs, and
 * versions are never released while the registry is open, so an in-flight run on an old version ends
 * normally.
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

/** What serves a strategy at one instant: the active version, and optionally a shadow scored beside it. */
export interface Serving {
  readonly active: ModelVersionEntry;
  readonly shadow?: ModelVersionEntry | undefined;
}

/** A version that cannot be served, and why (the reason is safe to show an operator). */
export class ModelRefusedError extends Error {
  constructor(
    readonly directory: string,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'ModelRefusedError';
  }
}

export interface ModelRegistryOptions {
  directory: string;
  engine: InferenceEngine;
  batching: Omit<MicroBatcherOptions, 'onRun'>;
  onRun?: (manifest: Manifest, rows: number, seconds: number) => void;
  logger: Logger;
}

export class ModelRegistry {
  /** strategy → version → entry */
  readonly #versions = new Map<string, Map<string, ModelVersionEntry>>();
  /** Explicit choices; a strategy without one is served by its newest version. */
  readonly #serving = new Map<string, Serving>();
  /** directory → reason, for versions found on disk that could not be loaded. */
  readonly #refused = new Map<string, string>();
  /** directory → its files' sizes and times when refused: unchanged files are not loaded again. */
  readonly #refusedFiles = new Map<string, string>();
  /** Entries replaced by a re-verified copy: maybe still in use by a run, so released only at close. */
  readonly #retired: ModelVersionEntry[] = [];
  #scanning: Promise<{ added: ModelVersionEntry[]; refused: RefusedModel[] }> | undefined;
  readonly #listeners = new Set<(strategy: string) => void>();

  private constructor(private readonly options: ModelRegistryOptions) {}

  static async load(options: ModelRegistryOptions): Promise<ModelRegistry> {
    const registry = new ModelRegistry(options);
    await registry.rescan();
    return registry;
  }

  get directory(): string {
    return this.options.directory;
  }

  get refused(): readonly RefusedModel[] {
    return [...this.#refused].map(([directory, reason]) => ({ directory, reason }));
  }

  /**
   * Loads version directories that appeared since the last scan (never activating them). A directory
   * that fails is logged when first refused or when its reason changes (a half-copied version is
   * retried on the next scan, not logged every time) and the service carries on.
   */
  rescan(): Promise<{ added: ModelVersionEntry[]; refused: RefusedModel[] }> {
    // One scan at a time: a timer tick during a slow scan joins it instead of loading twice.
    this.#scanning ??= this.#scan().finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  async #scan(): Promise<{ added: ModelVersionEntry[]; refused: RefusedModel[] }> {
    const { logger } = this.options;
    const added: ModelVersionEntry[] = [];
    const refused: RefusedModel[] = [];
    const found = await findVersionDirectories(this.options.directory);
    for (const directory of this.#refused.keys()) if (!found.includes(directory)) this.#forget(directory);
    for (const directory of found) {
      if (this.#loadedFrom(directory)) continue;
      const files = await fileStamp(directory);
      if (this.#refused.has(directory) && this.#refusedFiles.get(directory) === files) {
        refused.push({ directory, reason: this.#refused.get(directory)! });
        continue;
      }
      try {
        const entry = this.adopt(await loadVersion(directory, this.options));
        this.#forget(directory);
        added.push(entry);
        logger.info({ strategy: entry.manifest.strategy, version: entry.manifest.version }, 'model loaded');
      } catch (error) {
        const reason = (error as Error).message;
        refused.push({ directory, reason });
        if (this.#refused.get(directory) !== reason) {
          logger.error({ directory, reason }, `model refused: ${path.relative(process.cwd(), directory) || directory}: ${reason}`);
        }
        this.#refused.set(directory, reason);
        this.#refusedFiles.set(directory, files);
      }
    }
    return { added, refused };
  }

  /**
   * Loads `strategy/version` from disk again and checks everything (files, sha256, manifest, features,
   * smoke inference), whether or not it is loaded already: activation calls it so that a file damaged
   * since start-up is caught before it serves. Resolves with a fresh entry (not yet registered: pass it
   * to {@link adopt}); rejects with a {@link ModelRefusedError}.
   */
  async verify(strategy: string, version: string): Promise<ModelVersionEntry> {
    const directory = path.join(this.options.directory, strategy, version);
    if (!VERSION_PATTERN.test(version) || version === '.' || version === '..') {
      throw new ModelRefusedError(directory, `"${version}" is not a version name (1-64 of A-Z a-z 0-9 . _ -)`);
    }
    const exists = await stat(directory).then((s) => s.isDirectory(), () => false);
    if (!exists) {
      const known = (await findVersionDirectories(this.options.directory)).filter((d) => path.basename(path.dirname(d)) === strategy).map((d) => path.basename(d));
      throw new ModelRefusedError(directory, `there is no version "${version}" of ${strategy} in the models directory (found: ${known.join(', ') || 'none'})`);
    }
    try {
      return await loadVersion(directory, this.options);
    } catch (error) {
      throw new ModelRefusedError(directory, (error as Error).message);
    }
  }

  /**
   * Runs every check {@link verify} runs (files, sha256, manifest, features, smoke inference) on a version
   * directory that need not be in the models directory yet (a staging copy, which must still sit in
   * `<strategy>/<version>` directories), then releases what it loaded. Resolves with its manifest;
   * rejects with a {@link ModelRefusedError}.
   */
  async verifyDirectory(directory: string): Promise<Manifest> {
    let entry: ModelVersionEntry;
    try {
      entry = await loadVersion(directory, this.options);
    } catch (error) {
      throw new ModelRefusedError(directory, (error as Error).message);
    }
    await entry.model.release();
    return entry.manifest;
  }

  /**
   * Registers a loaded entry and returns the one to use. An entry for the same version with the same
   * sha256 is kept (the new one is released); a different one is replaced, and the old one released at
   * {@link close}, since a run may still be using it.
   */
  adopt(entry: ModelVersionEntry): ModelVersionEntry {
    const { strategy, version } = entry.manifest;
    const versions = this.#versions.get(strategy) ?? new Map<string, ModelVersionEntry>();
    this.#versions.set(strategy, versions);
    const existing = versions.get(version);
    if (existing && existing.manifest.sha256 === entry.manifest.sha256 && JSON.stringify(existing.manifest) === JSON.stringify(entry.manifest)) {
      void entry.model.release();
      return existing;
    }
    versions.set(version, entry);
    this.#changed(strategy);
    if (existing) {
      this.#retired.push(existing);
      const serving = this.#serving.get(strategy);
      if (serving && (serving.active === existing || serving.shadow === existing)) {
        this.#serving.set(strategy, {
          active: serving.active === existing ? entry : serving.active,
          shadow: serving.shadow === existing ? entry : serving.shadow,
        });
      }
    }
    this.#forget(entry.directory);
    return entry;
  }

  /** Switches what serves `strategy`, atomically: batches that already read {@link serving} keep theirs. */
  setServing(strategy: string, serving: Serving): void {
    for (const entry of [serving.active, serving.shadow]) {
      if (entry && this.find(strategy, entry.manifest.version) !== entry) {
        throw new Error(`${strategy}@${entry.manifest.version} is not registered (adopt it first)`);
      }
    }
    if (serving.shadow === serving.active) throw new Error(`${strategy}@${serving.active.manifest.version} cannot shadow itself`);
    const previous = this.#serving.get(strategy);
    this.#serving.set(strategy, Object.freeze({ ...serving }));
    if (previous?.active !== serving.active || previous?.shadow !== serving.shadow) this.#changed(strategy);
  }

  /**
   * Calls `listener` with the strategy, synchronously, whenever what the registry answers for it changes:
   * a version added or replaced, the active or shadow version switched. (The response cache's `models`
   * inputs.) A listener that throws is not this registry's problem: it must not.
   */
  onChange(listener: (strategy: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(strategy: string): void {
    for (const listener of this.#listeners) listener(strategy);
  }

  strategies(): string[] {
    return [...this.#versions].filter(([, versions]) => versions.size > 0).map(([strategy]) => strategy).sort();
  }

  /** A strategy's versions, oldest first by `createdAt`. */
  versionsOf(strategy: string): readonly ModelVersionEntry[] {
    // By instant, not by text: "…T00:00:00Z" and "…T00:00:00.500Z" do not sort as strings.
    return [...(this.#versions.get(strategy)?.values() ?? [])].sort(
      (a, b) => Date.parse(a.manifest.createdAt) - Date.parse(b.manifest.createdAt) || a.manifest.version.localeCompare(b.manifest.version),
    );
  }

  find(strategy: string, version: string): ModelVersionEntry | undefined {
    return this.#versions.get(strategy)?.get(version);
  }

  /** The newest version by `createdAt` (ties by name): the default when nothing was chosen. */
  newest(strategy: string): ModelVersionEntry | undefined {
    return this.versionsOf(strategy).at(-1);
  }

  /** What serves `strategy` now. Read it once per unit of work (a batch) and use that for the whole unit. */
  serving(strategy: string): Serving | undefined {
    const chosen = this.#serving.get(strategy);
    if (chosen) return chosen;
    const newest = this.newest(strategy);
    return newest && { active: newest };
  }

  /** The version serving a strategy. */
  active(strategy: string): ModelVersionEntry | undefined {
    return this.serving(strategy)?.active;
  }

  shadow(strategy: string): ModelVersionEntry | undefined {
    return this.serving(strategy)?.shadow;
  }

  async close(): Promise<void> {
    for (const versions of this.#versions.values()) for (const entry of versions.values()) await entry.model.release();
    for (const entry of this.#retired) await entry.model.release();
    this.#versions.clear();
    this.#serving.clear();
    this.#retired.length = 0;
  }

  #forget(directory: string): void {
    this.#refused.delete(directory);
    this.#refusedFiles.delete(directory);
  }

  #loadedFrom(directory: string): boolean {
    const [strategy, version] = [path.basename(path.dirname(directory)), path.basename(directory)];
    return this.find(strategy, version)?.directory === directory;
  }
}

/** Size and modification time of a version's two files: changes when either is rewritten or replaced. */
async function fileStamp(directory: string): Promise<string> {
  const stamps = await Promise.all(
    ['manifest.json', 'model.onnx'].map((name) =>
      stat(path.join(directory, name)).then((s) => `${s.size}:${s.mtimeMs}:${s.ino}`, () => 'missing'),
    ),
  );
  return stamps.join('|');
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
  const visibleDirectories = (d: Dirent) => d.isDirectory() && !d.name.startsWith('.');
  for (const strategy of strategies.filter(visibleDirectories).sort((a, b) => a.name.localeCompare(b.name))) {
    const versions = await readdir(path.join(root, strategy.name), { withFileTypes: true });
    for (const version of versions.filter(visibleDirectories).sort((a, b) => a.name.localeCompare(b.name))) {
      found.push(path.join(root, strategy.name, version.name));
    }
  }
  return found;
}

async function loadVersion(
  directory: string,
  options: ModelRegistryOptions,
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
    const { input, rows } = await smokeInput(featureOrder);
    const smoke = Array.from(await model.run(input, rows));
    const calibrated = smoke.map((p) => applyPlatt(manifest.calibration, p));
    const valid = (p: number) => Number.isFinite(p) && p >= 0 && p <= 1;
    if (smoke.length !== rows || !smoke.every(valid) || !calibrated.every(valid)) {
      throw new Error(`smoke inference returned [${smoke.join(', ')}] (calibrated [${calibrated.join(', ')}]), not ${rows} probabilities`);
    }
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

/**
 * The smoke test's known inputs: the features of a fixed synthetic price series (what real requests
 * look like) and a row of small constants, in the model's feature order. Built once per process.
 */
let smokeFeatures: Promise<Float64Array> | undefined;
async function smokeInput(featureOrder: readonly number[]): Promise<{ input: Float32Array; rows: number }> {
  smokeFeatures ??= (async () => {
    const market = createSyntheticMarket({ symbols: ['SMOKE'], seed: 20240101, historyBars: FEATURE_WINDOW + 20, startTime: new Date('2024-01-01T00:00:00Z') });
    const bars = (await market.fetchBars(['SMOKE'], { lookback: FEATURE_WINDOW })).get('SMOKE')!;
    return computeFeatures(bars).values;
  })();
  const realistic = await smokeFeatures;
  const width = featureOrder.length;
  const input = new Float32Array(2 * width).fill(0.01);
  featureOrder.forEach((featureIndex, column) => (input[column] = realistic[featureIndex]!));
  return { input, rows: 2 };
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
