import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { ModelRefusedError, ModelRegistry } from '../../../src/modules/models/registry.js';
import { corruptModelFile, editManifest, modelsFixture, REPO_MODELS, type ModelsFixture } from '../../helpers/models.js';

const { onnx } = onnxProto;

/** The committed graph with `+ 2` after its sigmoid: loads and runs, but returns values in (2, 3). */
function plusTwo(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const sigmoid = graph.node!.find((n) => n.opType === 'Sigmoid')!;
  sigmoid.output = ['p'];
  graph.initializer!.push(onnx.TensorProto.create({ name: 'two', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [2] }));
  graph.node!.push(onnx.NodeProto.create({ opType: 'Add', input: ['p', 'two'], output: ['probability'], name: 'plus_two' }));
  return onnx.ModelProto.encode(model).finish();
}

async function replaceModel(dir: string, transform: (bytes: Uint8Array) => Uint8Array): Promise<void> {
  const bytes = transform(await readFile(path.join(dir, 'model.onnx')));
  await writeFile(path.join(dir, 'model.onnx'), bytes);
  await editManifest(dir, (m) => (m.sha256 = createHash('sha256').update(bytes).digest('hex')));
}

/**
 * The registry's side of the model lifecycle: verifying a version from disk on demand, picking up new
 * versions on a rescan (never making them serve), and switching what serves atomically.
 */
describe('ModelRegistry lifecycle', () => {
  let fixture: ModelsFixture;
  let registry: ModelRegistry;
  let engineLoads = 0;
  const logged: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    destination: { write: (line: string) => void logged.push(JSON.parse(line)) },
  });

  before(async () => {
    fixture = await modelsFixture(['direction-1d']);
    const onnx = createOnnxEngine();
    const engine = {
      name: onnx.name,
      load: (bytes: Uint8Array, signature: Parameters<typeof onnx.load>[1]) => (engineLoads++, onnx.load(bytes, signature)),
    };
    registry = await ModelRegistry.load({ directory: fixture.dir, engine, batching: { maxBatchSize: 64, maxQueueDelayMs: 0 }, logger });
    registry.setServing('direction-1d', { active: registry.find('direction-1d', 'v1')! });
  });
  after(async () => {
    await registry.close();
    fixture.remove();
  });

  const refusal = async (version: string) => {
    const error = await registry.verify('direction-1d', version).then(
      (entry) => {
        void entry.model.release();
        return undefined;
      },
      (e: unknown) => e,
    );
    assert.ok(error instanceof ModelRefusedError, `expected ${version} to be refused, got ${String(error)}`);
    return error;
  };

  test('verify() loads a good version afresh; adopt() keeps the loaded entry when the files are the same', async () => {
    const fresh = await registry.verify('direction-1d', 'v1');
    const loaded = registry.find('direction-1d', 'v1')!;
    assert.notEqual(fresh, loaded);
    assert.equal(fresh.manifest.sha256, loaded.manifest.sha256);
    assert.equal(registry.adopt(fresh), loaded, 'the same files: the serving entry is kept, the fresh one released');
  });

  test('verify() refuses, with a reason an operator can act on: missing, corrupt, bad manifest, failing smoke inference', async () => {
    assert.match((await refusal('v404')).reason, /no version "v404" of direction-1d in the models directory \(found: v1\)/);
    assert.match((await refusal('..')).reason, /not a version name/);

    await fixture.addVersion('direction-1d', 'corrupt', { damage: corruptModelFile });
    assert.match((await refusal('corrupt')).reason, /model\.onnx has sha256 .* the manifest says .* \(corrupt or replaced file\)/);

    await fixture.addVersion('direction-1d', 'badmanifest', {
      damage: (dir) => editManifest(dir, (m) => (m.signal = { buyAbove: 0.4, sellBelow: 0.6 })),
    });
    assert.match((await refusal('badmanifest')).reason, /manifest\.json is invalid: signal/);

    await fixture.addVersion('direction-1d', 'otherfeatures', { damage: (dir) => editManifest(dir, (m) => (m.featureSet = 'f0')) });
    assert.match((await refusal('otherfeatures')).reason, /trained on feature set "f0"/);

    // A valid graph with the right names and shapes and a matching sha256, whose output is not a
    // probability (sigmoid + 2): only running it shows that.
    await fixture.addVersion('direction-1d', 'nosmoke', { damage: (dir) => replaceModel(dir, plusTwo) });
    assert.match(
      (await refusal('nosmoke')).reason,
      /smoke inference failed: smoke inference returned \[2\.\d+, 2\.\d+\] .*not 2 probabilities/,
    );

    assert.equal(registry.active('direction-1d')!.manifest.version, 'v1', 'refusals change nothing');
  });

  test('a loaded version whose file is damaged afterwards is refused by verify(), while the loaded copy keeps working', async () => {
    const dir = await fixture.addVersion('direction-1d', 'laterbroken', { createdAt: '2031-01-01T00:00:00.000Z' });
    const { added } = await registry.rescan();
    assert.ok(added.some((e) => e.manifest.version === 'laterbroken'));
    await corruptModelFile(dir);
    assert.match((await refusal('laterbroken')).reason, /corrupt or replaced file/);
    const loaded = registry.find('direction-1d', 'laterbroken')!;
    const input = new Float32Array(loaded.featureOrder.length).fill(0.1);
    assert.equal((await loaded.batcher.score(input, 1)).length, 1);
  });

  test('rescan() picks up a new version without serving it, and logs a broken one once, not on every scan', async () => {
    await fixture.addVersion('direction-1d', 'v2', { createdAt: '2032-01-01T00:00:00.000Z' });
    await fixture.addVersion('direction-1d', 'v3broken', { damage: corruptModelFile });
    logged.length = 0;
    const first = await registry.rescan();
    assert.deepEqual(
      first.added.map((e) => e.manifest.version),
      ['v2'],
    );
    assert.ok(first.refused.some((r) => r.directory.endsWith('v3broken')));
    assert.equal(registry.active('direction-1d')!.manifest.version, 'v1', 'the newest version is loaded, not activated');
    assert.equal(registry.newest('direction-1d')!.manifest.version, 'v2');

    const loadsBefore = engineLoads;
    const second = await registry.rescan();
    assert.deepEqual(second.added, []);
    assert.equal(
      engineLoads,
      loadsBefore,
      'refused versions whose files did not change are not loaded again (nosmoke gets as far as the engine)',
    );
    assert.ok(second.refused.some((r) => r.directory.endsWith('nosmoke')));
    const refusedLines = logged.filter((l) => String(l.msg).startsWith('model refused') && String(l.directory).endsWith('v3broken'));
    assert.equal(refusedLines.length, 1, 'one log line for a directory that keeps failing the same way');
    assert.equal(refusedLines[0]!.level, 50);
    assert.match(String(refusedLines[0]!.reason), /sha256/);
    assert.ok(registry.refused.some((r) => r.directory.endsWith('v3broken')));

    // Fixed in place (a correct model.onnx copied over): the next scan loads it and forgets the refusal.
    await cp(path.join(REPO_MODELS, 'direction-1d', 'v1', 'model.onnx'), path.join(fixture.dir, 'direction-1d', 'v3broken', 'model.onnx'));
    const third = await registry.rescan();
    assert.deepEqual(
      third.added.map((e) => e.manifest.version),
      ['v3broken'],
    );
    assert.ok(!registry.refused.some((r) => r.directory.endsWith('v3broken')));

    // A refused directory that disappears is forgotten too.
    await fixture.addVersion('direction-1d', 'gone', { damage: corruptModelFile });
    await registry.rescan();
    assert.ok(registry.refused.some((r) => r.directory.endsWith('gone')));
    await rm(path.join(fixture.dir, 'direction-1d', 'gone'), { recursive: true });
    await registry.rescan();
    assert.ok(!registry.refused.some((r) => r.directory.endsWith('gone')));
  });

  test('setServing() switches atomically: a Serving read before the switch stays what it was', async () => {
    const before = registry.serving('direction-1d')!;
    const v2 = registry.find('direction-1d', 'v2')!;
    registry.setServing('direction-1d', { active: v2, shadow: before.active });
    assert.equal(before.active.manifest.version, 'v1');
    assert.equal(before.shadow, undefined);
    assert.equal(registry.active('direction-1d'), v2);
    assert.equal(registry.shadow('direction-1d')!.manifest.version, 'v1');
    assert.throws(() => registry.setServing('direction-1d', { active: v2, shadow: v2 }), /cannot shadow itself/);
    registry.setServing('direction-1d', { active: before.active });
    assert.equal(registry.shadow('direction-1d'), undefined);
  });

  test('a stray file in a strategy directory is not a version', async () => {
    await writeFile(path.join(fixture.dir, 'direction-1d', 'NOTES.md'), 'v4 coming soon\n');
    const { added, refused } = await registry.rescan();
    assert.deepEqual(added, []);
    assert.ok(!refused.some((r) => r.directory.endsWith('NOTES.md')));
  });
});
