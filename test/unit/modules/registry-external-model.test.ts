import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { ModelRegistry } from '../../../src/modules/models/index.js';
import { projectRoot } from '../../helpers/process.js';

const { onnx } = onnxProto;

/**
 * The gateway serves any ONNX model whose manifest is right, however it was made. scikit-learn exports
 * (skl2onnx with zipmap off) output class probabilities as [N, 2]; this builds such a graph from the
 * committed model (its sigmoid p becomes Concat(1 − p, p)) and serves it through the registry.
 */
function withTwoColumnOutput(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const sigmoid = graph.node!.find((n) => n.opType === 'Sigmoid')!;
  sigmoid.output = ['p_yes'];
  graph.initializer!.push(onnx.TensorProto.create({ name: 'one', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [1] }));
  graph.node!.push(
    onnx.NodeProto.create({ opType: 'Sub', input: ['one', 'p_yes'], output: ['p_no'], name: 'complement' }),
    onnx.NodeProto.create({
      opType: 'Concat',
      input: ['p_no', 'p_yes'],
      output: ['probabilities'],
      name: 'classes',
      attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })],
    }),
  );
  const shape = onnx.TensorShapeProto.create({
    dim: [onnx.TensorShapeProto.Dimension.create({ dimParam: 'batch' }), onnx.TensorShapeProto.Dimension.create({ dimValue: 2 })],
  });
  graph.output = [
    onnx.ValueInfoProto.create({
      name: 'probabilities',
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: onnx.TensorProto.DataType.FLOAT, shape }) }),
    }),
  ];
  return onnx.ModelProto.encode(model).finish();
}

describe('a model made elsewhere, with [N, 2] class-probability output', () => {
  let root: string;
  let registry: ModelRegistry;
  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'sibyl-external-'));
    const source = path.join(projectRoot, 'models/direction-1d/v1');
    for (const [version, probabilityIndex] of [
      ['v1', undefined],
      ['ext', undefined],
      ['ext0', 0],
    ] as const) {
      const dir = path.join(root, 'direction-1d', version);
      cpSync(source, dir, { recursive: true });
      if (version === 'v1') continue;
      const bytes = withTwoColumnOutput(readFileSync(path.join(dir, 'model.onnx')));
      writeFileSync(path.join(dir, 'model.onnx'), bytes);
      const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      manifest.version = version;
      manifest.output = probabilityIndex === undefined ? { name: 'probabilities' } : { name: 'probabilities', probabilityIndex };
      manifest.sha256 = createHash('sha256').update(bytes).digest('hex');
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
    }
    registry = await ModelRegistry.load({
      directory: root,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 64, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
  });
  after(async () => {
    await registry.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('loads, and its P(event) column equals the original model’s output; probabilityIndex picks a column', async () => {
    assert.deepEqual(registry.refused, []);
    const [original, external, firstColumn] = ['v1', 'ext', 'ext0'].map((v) =>
      registry.versionsOf('direction-1d').find((e) => e.manifest.version === v)!,
    );
    const rows = 5;
    const input = Float32Array.from({ length: rows * 13 }, (_, i) => Math.sin(i) * 0.05);
    const expected = await original!.batcher.score(input, rows);
    const yes = await external!.batcher.score(input, rows);
    const no = await firstColumn!.batcher.score(input, rows);
    for (let r = 0; r < rows; r++) {
      assert.ok(Math.abs(yes[r]! - expected[r]!) < 1e-6, `row ${r}: ${yes[r]} vs ${expected[r]}`);
      assert.ok(Math.abs(no[r]! - (1 - expected[r]!)) < 1e-6, `row ${r}: ${no[r]} vs ${1 - expected[r]!}`);
    }
  });
});
