import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { mulberry32 } from '../../../src/shared/random.js';
import type { Manifest } from '../../../src/domain/manifest.js';
import { ModelRegistry } from '../../../src/modules/models/registry.js';
import { FEATURE_NAMES, computeFeatures } from '../../../src/domain/features.js';
import { exportMlpToOnnx, mlpForward, type MlpSpec } from '../../../src/training/onnx-export.js';

const { onnx } = onnxProto;

const REPO_MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models');
const STRATEGIES = ['direction-1d', 'direction-5d'] as const;
const F = FEATURE_NAMES.length;
const silent = createLogger({ level: 'silent', format: 'json' });
const BATCHING = { maxBatchSize: 64, maxQueueDelayMs: 0 };

const temps: string[] = [];
const registries: ModelRegistry[] = [];
after(async () => {
  for (const r of registries) await r.close();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function tempModels(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sibyl-registry-test-'));
  temps.push(dir);
  return dir;
}

async function load(directory: string, extra: Partial<Parameters<typeof ModelRegistry.load>[0]> = {}): Promise<ModelRegistry> {
  const registry = await ModelRegistry.load({ directory, engine: createOnnxEngine(), batching: BATCHING, logger: silent, ...extra });
  registries.push(registry);
  return registry;
}

const copyModel = (strategy: string, to: string) => cp(path.join(REPO_MODELS, strategy, 'v1'), to, { recursive: true });
const readManifest = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, any>;
async function editManifest(dir: string, edit: (m: Record<string, any>) => void): Promise<void> {
  const m = await readManifest(dir);
  edit(m);
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}
async function writeModel(dir: string, bytes: Uint8Array, fixSha = true): Promise<void> {
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  if (fixSha) await editManifest(dir, (m) => (m.sha256 = createHash('sha256').update(bytes).digest('hex')));
}

/** A logistic regression over `features` inputs, exported like the trainer does (weights are irrelevant here). */
function logisticOnnx(features: number, inputName?: string): Uint8Array {
  const rng = mulberry32(features);
  const spec: MlpSpec = {
    inputMean: Array.from({ length: features }, () => rng() - 0.5),
    inputScale: Array.from({ length: features }, () => 0.5 + rng()),
    layers: [{ weights: [Array.from({ length: features }, () => rng() - 0.5)], bias: [0.1], activation: 'none' }],
    outputActivation: 'sigmoid',
    ...(inputName ? { inputName } : {}),
  };
  return exportMlpToOnnx(spec);
}

/** Feature rows for a few synthetic symbols, packed in the order the manifest lists its features. */
async function featureRows(count: number, order: readonly number[]): Promise<Float32Array> {
  const symbols = Array.from({ length: count }, (_, i) => `S${i}`);
  const market = createSyntheticMarket({ symbols, seed: 77, historyBars: 250, startTime: new Date('2024-06-01T00:00:00Z') });
  const bars = await market.fetchBars(symbols, { lookback: 250 });
  const input = new Float32Array(count * order.length);
  symbols.forEach((s, r) => {
    const values = computeFeatures(bars.get(s) as Bar[]).values;
    order.forEach((featureIndex, c) => (input[r * order.length + c] = values[featureIndex]!));
  });
  return input;
}

describe('ModelRegistry with the committed models', () => {
  let root: string;
  let registry: ModelRegistry;
  const runs: Array<{ strategy: string; version: string; rows: number }> = [];
  const committed = new Map<string, Manifest>();

  before(async () => {
    root = await tempModels();
    for (const s of STRATEGIES) {
      await copyModel(s, path.join(root, s, 'v1'));
      committed.set(s, (await readManifest(path.join(REPO_MODELS, s, 'v1'))) as Manifest);
    }
    // Stray files next to the version directories are ignored, not refused.
    await writeFile(path.join(root, 'README.md'), 'models live in <strategy>/<version>/\n');
    await writeFile(path.join(root, 'direction-1d', 'notes.txt'), 'nothing to see\n');
    registry = await load(root, { onRun: (manifest, rows) => runs.push({ strategy: manifest.strategy, version: manifest.version, rows }) });
  });

  test('loads both strategies, refuses nothing, and active() is the newest by createdAt', () => {
    assert.deepEqual(registry.refused, []);
    assert.deepEqual(registry.strategies(), ['direction-1d', 'direction-5d']);
    for (const s of STRATEGIES) {
      const versions = registry.versionsOf(s);
      assert.equal(versions.length, 1);
      const active = registry.active(s)!;
      assert.equal(active, versions[0]);
      assert.equal(active.manifest.strategy, s);
      assert.equal(active.manifest.version, 'v1');
      assert.equal(active.manifest.createdAt, committed.get(s)!.createdAt);
      assert.equal(active.directory, path.join(root, s, 'v1'));
      assert.deepEqual(
        active.featureOrder,
        FEATURE_NAMES.map((_, i) => i),
      );
      assert.deepEqual(active.model.signature, { inputName: 'features', outputName: 'probability', featureCount: F });
    }
    assert.equal(registry.active('direction-2d'), undefined);
    assert.deepEqual(registry.versionsOf('direction-2d'), []);
  });

  test('active() picks the newest createdAt among versions (v2 newer, v3 older than v1 is not active)', async () => {
    const dir = await tempModels();
    await copyModel('direction-1d', path.join(dir, 'direction-1d', 'v1'));
    for (const [version, createdAt] of [
      ['v2', '2030-05-01T00:00:00.000Z'],
      ['v3', '2020-01-01T00:00:00.000Z'],
    ] as const) {
      const to = path.join(dir, 'direction-1d', version);
      await copyModel('direction-1d', to);
      await editManifest(to, (m) => Object.assign(m, { version, createdAt }));
    }
    const r = await load(dir);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(
      r.versionsOf('direction-1d').map((e) => e.manifest.version),
      ['v3', 'v1', 'v2'],
    );
    assert.equal(r.active('direction-1d')!.manifest.version, 'v2');
  });

  for (const s of STRATEGIES) {
    test(`${s}: a run through the registry's batcher equals a direct onnxruntime-node session on the same file`, async () => {
      const entry = registry.active(s)!;
      const bytes = await readFile(path.join(REPO_MODELS, s, 'v1', 'model.onnx'));
      const input = await featureRows(6, entry.featureOrder);
      const before = runs.length;
      const viaBatcher = await entry.batcher.score(input, 6);
      assert.deepEqual(runs.slice(before), [{ strategy: s, version: 'v1', rows: 6 }], 'onRun reports the run with its manifest');

      const session = await ort.InferenceSession.create(bytes);
      try {
        const direct = (await session.run({ features: new ort.Tensor('float32', Float32Array.from(input), [6, F]) })).probability!;
        assert.deepEqual(direct.dims, [6, 1]);
        const expected = direct.data as Float32Array;
        assert.equal(viaBatcher.length, 6);
        for (let i = 0; i < 6; i++)
          assert.ok(Math.abs(viaBatcher[i]! - expected[i]!) <= 1e-7, `row ${i}: ${viaBatcher[i]} vs ${expected[i]}`);
      } finally {
        await session.release();
      }

      // Independent of onnxruntime: the graph's own initializers through the pure-JS forward pass.
      const model = onnx.ModelProto.decode(bytes);
      const init = (name: string) => {
        const t = model.graph!.initializer!.find((x) => x.name === name)!;
        const raw = t.rawData!;
        const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        return Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
      };
      const spec: MlpSpec = {
        inputMean: init('sibyl.input_mean'),
        inputScale: init('sibyl.input_scale'),
        layers: [{ weights: [init('sibyl.layer0.weight')], bias: init('sibyl.layer0.bias'), activation: 'none' }],
        outputActivation: 'sigmoid',
      };
      const rows = Array.from({ length: 6 }, (_, r) => Array.from(input.subarray(r * F, (r + 1) * F)));
      mlpForward(spec, rows).forEach((p, i) => assert.ok(Math.abs(viaBatcher[i]! - p) < 1e-5, `row ${i}: ${viaBatcher[i]} vs JS ${p}`));
      // Real feature rows give real (non-constant, non-saturated) probabilities.
      assert.ok(Array.from(viaBatcher).every((p) => p > 0.05 && p < 0.95));
      assert.ok(new Set(viaBatcher).size > 1);
    });
  }

  test('the batcher merges concurrent scoring calls of one model into one run', async () => {
    const entry = registry.active('direction-5d')!;
    const input = await featureRows(4, entry.featureOrder);
    const before = runs.length;
    const [a, b] = await Promise.all([entry.batcher.score(input.subarray(0, 2 * F), 2), entry.batcher.score(input.subarray(2 * F), 2)]);
    const all = await entry.batcher.score(input, 4);
    assert.deepEqual(
      runs.slice(before).map((r) => r.rows),
      [4, 4],
    );
    assert.deepEqual([...a, ...b], [...all]);
  });

  test('a missing models directory loads nothing and refuses nothing', async () => {
    const r = await load(path.join(await tempModels(), 'does-not-exist'));
    assert.deepEqual(r.strategies(), []);
    assert.deepEqual(r.refused, []);
  });
});

/**
 * Each case: a temp models dir with the good direction-1d/v1 and a bad version next to it. The bad one
 * starts as an intact copy renamed to v2 with a NEWER createdAt (so if it were wrongly accepted it would
 * even become active), then gets one defect.
 */
interface Case {
  name: string;
  /** Where the bad version lives, relative to the models dir. */
  at?: string;
  break: (bad: string) => Promise<void>;
  reason: RegExp;
}

const COMMITTED_SHA = '4b1ccd1ce83ed7e3f46459695983b8aab5001fa4e5117e69da9eb16a0fa27da1';

const CASES: Case[] = [
  {
    name: 'model.onnx bytes flipped (sha256 mismatch)',
    break: async (bad) => {
      const bytes = await readFile(path.join(bad, 'model.onnx'));
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await writeFile(path.join(bad, 'model.onnx'), bytes);
    },
    reason: new RegExp(
      `^model\\.onnx has sha256 [0-9a-f]{12}…, the manifest says ${COMMITTED_SHA.slice(0, 12)}… \\(corrupt or replaced file\\)$`,
    ),
  },
  { name: 'model.onnx missing', break: (bad) => unlink(path.join(bad, 'model.onnx')), reason: /^model\.onnx is missing$/ },
  { name: 'manifest.json missing', break: (bad) => unlink(path.join(bad, 'manifest.json')), reason: /^manifest\.json is missing$/ },
  {
    name: 'manifest.json is not JSON',
    break: (bad) => writeFile(path.join(bad, 'manifest.json'), '{ "strategy": "direction-1d", '),
    reason: /^manifest\.json is not valid JSON: /,
  },
  {
    name: 'manifest fails the schema (signal.buyAbove 0.4)',
    break: (bad) => editManifest(bad, (m) => (m.signal.buyAbove = 0.4)),
    reason: /^manifest\.json is invalid: signal: need sellBelow ≤ 0\.5 ≤ buyAbove/,
  },
  {
    name: 'manifest fails the schema (no sha256, createdAt not a datetime)',
    break: (bad) =>
      editManifest(bad, (m) => {
        delete m.sha256;
        m.createdAt = 'yesterday';
      }),
    reason: /^manifest\.json is invalid: .*createdAt: .*sha256: /,
  },
  {
    name: 'absurd calibration (issue 17: a=1e308, b=-1e308 serves probability 0, SELL, for everything)',
    break: (bad) => editManifest(bad, (m) => Object.assign(m.calibration, { a: 1e308, b: -1e308 })),
    reason:
      /^manifest\.json is invalid: calibration\.a: Too big: expected number to be <=20; calibration\.b: Too small: expected number to be >=-20$/,
  },
  {
    name: 'non-finite calibration (1e309 in the JSON reads as Infinity)',
    break: async (bad) => {
      const file = path.join(bad, 'manifest.json');
      const text = JSON.stringify(JSON.parse(await readFile(file, 'utf8'))).replace(/"b":[-0-9.e]+/, '"b":1e309');
      await writeFile(file, text);
    },
    reason: /^manifest\.json is invalid: calibration\.b: /,
  },
  {
    name: 'a calibration slope beyond -20 (saturates every probability)',
    break: (bad) => editManifest(bad, (m) => (m.calibration.a = -25)),
    reason: /^manifest\.json is invalid: calibration\.a: Too small: expected number to be >=-20$/,
  },
  {
    name: 'absurd interval (center 50, a quantile of 1e300) and horizon',
    break: (bad) =>
      editManifest(bad, (m) => {
        m.interval.center = 50;
        m.interval.quantiles['0.99'] = 1e300;
        m.horizonBars = 1e9;
      }),
    reason: /^manifest\.json is invalid: horizonBars: Too big: .*interval\.center: Too big: .*interval\.quantiles\.0\.99: Too big: /,
  },
  {
    name: 'absurd training statistics (the explanation baseline)',
    break: (bad) => editManifest(bad, (m) => (m.featureStats.features.ret_1d.mean = -1e300)),
    reason: /^manifest\.json is invalid: featureStats\.features\.ret_1d\.mean: Too small: /,
  },
  {
    name: 'featureSet "f0"',
    break: (bad) => editManifest(bad, (m) => (m.featureSet = 'f0')),
    reason: /^trained on feature set "f0", this gateway computes "f1"$/,
  },
  {
    name: 'an unknown feature name',
    break: (bad) => editManifest(bad, (m) => (m.features[3] = 'ret_90d')),
    reason: /^uses features this gateway does not compute: ret_90d$/,
  },
  {
    name: 'input.featureCount not matching the features',
    break: (bad) => editManifest(bad, (m) => (m.input.featureCount = 12)),
    reason: /^input\.featureCount is 12 but 13 features are listed$/,
  },
  {
    name: 'manifest input name not in the graph',
    break: (bad) => editManifest(bad, (m) => (m.input.name = 'inputs')),
    reason: /^model\.onnx has no input "inputs" \(it has: features\)$/,
  },
  {
    name: 'graph input renamed (sha256 fixed so the name check is reached)',
    break: (bad) => writeModel(bad, logisticOnnx(F, 'x')),
    reason: /^model\.onnx has no input "features" \(it has: x\)$/,
  },
  {
    name: 'graph takes 12 features, manifest 13 (sha256 fixed)',
    break: (bad) => writeModel(bad, logisticOnnx(12)),
    reason: /^model\.onnx input "features" has shape \[batch, 12\], the manifest expects \[batch, 13\]$/,
  },
  {
    name: 'manifest output name not in the graph',
    break: (bad) => editManifest(bad, (m) => (m.output.name = 'prob')),
    reason: /^model\.onnx has no output "prob" \(it has: probability\)$/,
  },
  {
    name: 'directory name not matching strategy/version',
    break: (bad) => editManifest(bad, (m) => (m.version = 'v1')),
    reason: /^manifest says direction-1d\/v1, but the files are in direction-1d\/v2$/,
  },
  {
    name: 'unknown strategy',
    at: 'direction-2d/v2',
    break: (bad) => editManifest(bad, (m) => (m.strategy = 'direction-2d')),
    reason: /^unknown strategy "direction-2d"$/,
  },
  {
    name: 'random bytes with a matching sha256 (the ONNX reader must refuse them)',
    break: async (bad) => {
      const rng = mulberry32(1234);
      await writeModel(
        bad,
        Uint8Array.from({ length: 907 }, () => Math.floor(rng() * 256)),
      );
    },
    reason: /^not an ONNX model: /,
  },
  {
    name: 'an empty model.onnx with a matching sha256',
    break: (bad) => writeModel(bad, new Uint8Array(0)),
    reason: /^not an ONNX model: the input is empty \(0 bytes\)$/,
  },
];

async function setUp(at: string, breakIt: (bad: string) => Promise<void>): Promise<{ root: string; bad: string }> {
  const root = await tempModels();
  await copyModel('direction-1d', path.join(root, 'direction-1d', 'v1'));
  const bad = path.join(root, ...at.split('/'));
  await mkdir(path.dirname(bad), { recursive: true });
  await copyModel('direction-1d', bad);
  await editManifest(bad, (m) => Object.assign(m, { version: path.basename(bad), createdAt: '2030-01-01T00:00:00.000Z' }));
  await breakIt(bad);
  return { root, bad };
}

async function assertGoodStillServes(registry: ModelRegistry): Promise<void> {
  const active = registry.active('direction-1d');
  assert.ok(active, 'direction-1d still has an active version');
  assert.equal(active.manifest.version, 'v1');
  assert.equal(active.manifest.sha256, COMMITTED_SHA);
  assert.equal(registry.versionsOf('direction-1d').length, 1);
  const out = await active.batcher.score(new Float32Array(F).fill(0.01), 1);
  assert.ok(out[0]! > 0 && out[0]! < 1);
}

describe('ModelRegistry refuses a broken version and keeps serving the good one', () => {
  test('control: the intact copy used as the base of every case loads, and (newer) becomes active', async () => {
    const { root } = await setUp('direction-1d/v2', async () => undefined);
    const r = await load(root);
    assert.deepEqual(r.refused, []);
    assert.deepEqual(
      r.versionsOf('direction-1d').map((e) => e.manifest.version),
      ['v1', 'v2'],
    );
    assert.equal(r.active('direction-1d')!.manifest.version, 'v2');
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const { root, bad } = await setUp(c.at ?? 'direction-1d/v2', c.break);
      const r = await load(root);
      assert.equal(r.refused.length, 1, JSON.stringify(r.refused));
      assert.equal(r.refused[0]!.directory, bad);
      assert.match(r.refused[0]!.reason, c.reason);
      assert.deepEqual(r.strategies(), ['direction-1d']);
      await assertGoodStillServes(r);
    });
  }

  test('a duplicate version in two directories: the first (sorted) loads, the other is refused', async () => {
    // A second directory claiming direction-1d/v1 can only be misnamed (models/xdirection-1d/v1), and the
    // strict directory check refuses it for its name (see the regression test below).
    const { root, bad } = await setUp('xdirection-1d/v1', (dir) => editManifest(dir, (m) => (m.version = 'v1')));
    const r = await load(root);
    assert.equal(r.refused.length, 1, JSON.stringify(r.refused));
    assert.equal(r.refused[0]!.directory, bad);
    assert.match(
      r.refused[0]!.reason,
      /^version v1 of direction-1d is already loaded from another directory$|^manifest says direction-1d\/v1, but the files are in xdirection-1d\/v1$/,
    );
    assert.equal(r.active('direction-1d')!.directory, path.join(root, 'direction-1d', 'v1'));
    await assertGoodStillServes(r);
  });

  test('several broken versions at once: each refused with its own reason, in directory order', async () => {
    const { root } = await setUp('direction-1d/v2', (bad) => editManifest(bad, (m) => (m.featureSet = 'f0')));
    const v3 = path.join(root, 'direction-1d', 'v3');
    await copyModel('direction-1d', v3);
    await editManifest(v3, (m) => (m.version = 'v3'));
    await unlink(path.join(v3, 'model.onnx'));
    await mkdir(path.join(root, 'direction-5d', 'empty'), { recursive: true });
    const r = await load(root);
    assert.deepEqual(
      r.refused.map((x) => [path.relative(root, x.directory), x.reason]),
      [
        [path.join('direction-1d', 'v2'), 'trained on feature set "f0", this gateway computes "f1"'],
        [path.join('direction-1d', 'v3'), 'model.onnx is missing'],
        [path.join('direction-5d', 'empty'), 'manifest.json is missing'],
      ],
    );
    await assertGoodStillServes(r);
  });

  test('each refusal is logged once at error level with the directory and the reason', async () => {
    const { root, bad } = await setUp('direction-1d/v2', (dir) => editManifest(dir, (m) => (m.features[0] = 'alpha')));
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const r = await load(root, { logger: createLogger({ level: 'info', format: 'json', destination }) });
    assert.equal(r.refused.length, 1);
    const errors = lines.filter((l) => l.level === 50);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.directory, bad);
    assert.equal(errors[0]!.reason, 'uses features this gateway does not compute: alpha');
    assert.match(String(errors[0]!.msg), /^model refused: .*direction-1d[/\\]v2: uses features this gateway does not compute: alpha$/);
    const loaded = lines.filter((l) => l.msg === 'model loaded');
    assert.deepEqual(
      loaded.map((l) => [l.strategy, l.version]),
      [['direction-1d', 'v1']],
    );
  });
});

describe('ModelRegistry: regressions', () => {
  // Regression, fixed (src/modules/models/registry.ts, loadVersion): the directory check is
  //   directory.endsWith(path.join(manifest.strategy, manifest.version))
  // a plain string suffix with no path-separator boundary, so models/xdirection-1d/v2 (or
  // models/old-direction-1d/v2, a backup copy…) "matches" direction-1d/v2. Such a stray directory is
  // loaded under direction-1d and, being newest, becomes the ACTIVE version. Expected: refused with
  // "manifest says direction-1d/v2, but the files are in xdirection-1d/v2".
  test('a directory whose name merely ends with the strategy (xdirection-1d/v2) is refused', async () => {
    const { root, bad } = await setUp('xdirection-1d/v2', async () => undefined);
    const r = await load(root);
    const active = r.active('direction-1d')!;
    assert.equal(
      active.directory,
      path.join(root, 'direction-1d', 'v1'),
      `active version served from ${path.relative(root, active.directory)}`,
    );
    assert.equal(r.refused.length, 1, `refused: ${JSON.stringify(r.refused)}`);
    assert.equal(r.refused[0]!.directory, bad);
    assert.match(r.refused[0]!.reason, /^manifest says direction-1d\/v2, but the files are in xdirection-1d\/v2$/);
  });

  // Regression, fixed (src/modules/models/registry.ts, ModelRegistry.load): versions are ordered with
  //   a.manifest.createdAt.localeCompare(b.manifest.createdAt)
  // i.e. as strings. The schema accepts any ISO datetime (z.string().datetime()), including ones without
  // fractional seconds, and "…T00:00:00Z" sorts AFTER "…T00:00:00.500Z" ('.' < 'Z'), so the OLDER version
  // is served. Expected: compare Date.parse(createdAt).
  test('active() is the newest by instant even when createdAt values differ in fractional-second precision', async () => {
    const root = await tempModels();
    for (const [version, createdAt] of [
      ['v1', '2030-01-01T00:00:00Z'],
      ['v2', '2030-01-01T00:00:00.500Z'],
    ] as const) {
      const dir = path.join(root, 'direction-1d', version);
      await copyModel('direction-1d', dir);
      await editManifest(dir, (m) => Object.assign(m, { version, createdAt }));
    }
    const r = await load(root);
    assert.deepEqual(r.refused, []);
    assert.ok(Date.parse('2030-01-01T00:00:00.500Z') > Date.parse('2030-01-01T00:00:00Z'));
    assert.equal(r.active('direction-1d')!.manifest.version, 'v2', 'v2 (00:00:00.500) is newer than v1 (00:00:00)');
  });
});
