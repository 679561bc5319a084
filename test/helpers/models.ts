import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { projectRoot } from './process.js';
import { tempDir } from './services.js';

export const REPO_MODELS = path.join(projectRoot, 'models');
export const STRATEGIES = ['direction-1d', 'direction-5d'] as const;

/**
 * A private models directory for a test, starting with copies of the committed versions, plus ways to
 * make more versions from them: renamed, recalibrated (so their probabilities differ), or broken.
 */
export interface ModelsFixture {
  readonly dir: string;
  /**
   * Writes `strategy/version` as a copy of the committed v1 with its version renamed, optionally a newer
   * `createdAt` and a shifted Platt intercept (same ONNX file, so the sha256 still matches, but every
   * probability differs). The copy is made beside the directory and renamed into place, so a rescan
   * never sees half a version.
   */
  addVersion(strategy: string, version: string, options?: VersionOptions): Promise<string>;
  remove(): void;
}

export interface VersionOptions {
  createdAt?: string;
  calibrationShift?: number;
  /** Runs on the copy before it is moved into place. */
  damage?: (dir: string) => Promise<void>;
}

export async function modelsFixture(strategies: readonly string[] = STRATEGIES): Promise<ModelsFixture> {
  const temp = tempDir('sibyl-models-');
  const dir = path.join(temp.dir, 'models');
  await mkdir(dir);
  for (const strategy of strategies) await cp(path.join(REPO_MODELS, strategy, 'v1'), path.join(dir, strategy, 'v1'), { recursive: true });
  let n = 0;
  return {
    dir,
    async addVersion(strategy, version, options = {}) {
      const staging = path.join(temp.dir, `staging-${n++}`);
      await cp(path.join(REPO_MODELS, strategy, 'v1'), staging, { recursive: true });
      await editManifest(staging, (m) => {
        m.version = version;
        if (options.createdAt) m.createdAt = options.createdAt;
        if (options.calibrationShift) m.calibration.b += options.calibrationShift;
      });
      await options.damage?.(staging);
      const target = path.join(dir, strategy, version);
      await mkdir(path.dirname(target), { recursive: true });
      await rename(staging, target);
      return target;
    },
    remove: temp.remove,
  };
}

export async function editManifest(dir: string, edit: (manifest: Record<string, any>) => void): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, any>;
  edit(manifest);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

/** Flips bytes in the middle of model.onnx, leaving the manifest (and its sha256) as it was. */
export async function corruptModelFile(dir: string): Promise<void> {
  const file = path.join(dir, 'model.onnx');
  const bytes = await readFile(file);
  for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 16; i++) bytes[i] = bytes[i]! ^ 0xff;
  await writeFile(file, bytes);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

const { onnx } = onnxProto;

export interface Degradation {
  /** Standard deviation of Gaussian noise added to every weight of the model's one dense layer (seeded). */
  readonly weightNoise?: number;
  /** Multiplies every weight (−1 flips the model: it predicts the other way). */
  readonly weightScale?: number;
  /** Multiplies the manifest's interval quantiles: below 1 the 95% interval is narrower than calibrated. */
  readonly intervalScale?: number;
  readonly seed?: number;
}

/**
 * A damaged copy of a version's model, made to be worse and still to load: the dense layer's weights in
 * model.onnx are scaled and/or noised (decoded and re-encoded with onnx-proto), the manifest's sha256 is
 * set to the new file's, so the registry verifies it like any trained version. For `damage` of
 * {@link ModelsFixture.addVersion}.
 */
export function degradeModel(degradation: Degradation): (dir: string) => Promise<void> {
  return async (dir) => {
    const file = path.join(dir, 'model.onnx');
    const model = onnx.ModelProto.decode(await readFile(file));
    const weights = model.graph!.initializer!.find((t) => t.name === 'sibyl.layer0.weight');
    if (!weights?.rawData) throw new Error(`${file}: no sibyl.layer0.weight initializer with raw data`);
    const raw = weights.rawData;
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const normal = gaussian(degradation.seed ?? 7);
    for (let i = 0; i < values.length; i++)
      values[i] = values[i]! * (degradation.weightScale ?? 1) + (degradation.weightNoise ?? 0) * normal();
    weights.rawData = new Uint8Array(values.buffer);
    const bytes = onnx.ModelProto.encode(model).finish();
    await writeFile(file, bytes);
    await editManifest(dir, (m) => {
      m.sha256 = createHash('sha256').update(bytes).digest('hex');
      const scale = degradation.intervalScale;
      if (scale !== undefined) {
        for (const table of [m.interval.quantiles, m.interval.lowerQuantiles])
          for (const level of Object.keys(table ?? {})) table[level] *= scale;
      }
    });
  };
}

/** Standard normal draws (Box–Muller over an LCG), the test's own: the damage does not depend on the code under test. */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0) + 0.5) / 4_294_967_296;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}
