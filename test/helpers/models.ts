import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
