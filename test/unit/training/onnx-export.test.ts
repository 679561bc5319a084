import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportMlpToOnnx, mlpForward, type MlpSpec } from '../../../src/training/onnx-export.js';
import { readOnnxMetadata } from '../../../src/infra/inference/onnx-inspect.js';
import { mulberry32 } from '../../../src/shared/random.js';

const uniform = (rng: () => number, lo: number, hi: number) => lo + (hi - lo) * rng();
const gaussian = (rng: () => number) => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());

/** Random MLP: `hidden` lists hidden-layer widths ([] = logistic regression). */
function randomSpec(seed: number, features: number, hidden: number[]): MlpSpec {
  const rng = mulberry32(seed);
  const widths = [features, ...hidden, 1];
  const layers = widths.slice(1).map((outs, l) => {
    const ins = widths[l]!;
    return {
      weights: Array.from({ length: outs }, () => Array.from({ length: ins }, () => (gaussian(rng) * 1.5) / Math.sqrt(ins))),
      bias: Array.from({ length: outs }, () => uniform(rng, -0.5, 0.5)),
      activation: l === widths.length - 2 ? ('none' as const) : ('relu' as const),
    };
  });
  return {
    inputMean: Array.from({ length: features }, () => uniform(rng, -50, 150)),
    inputScale: Array.from({ length: features }, () => uniform(rng, 0.01, 20)),
    layers,
    outputActivation: 'sigmoid',
  };
}

/** Raw (unstandardized) rows around the spec's mean, a few scales out so some units saturate. */
function randomRows(rng: () => number, spec: MlpSpec, n: number): number[][] {
  return Array.from({ length: n }, () => spec.inputMean.map((m, j) => m + spec.inputScale[j]! * 2 * gaussian(rng)));
}

const sessions: ort.InferenceSession[] = [];
after(async () => {
  for (const s of sessions) await s.release();
});
async function load(bytes: Uint8Array): Promise<ort.InferenceSession> {
  const session = await ort.InferenceSession.create(Buffer.from(bytes));
  sessions.push(session);
  return session;
}
async function run(session: ort.InferenceSession, rows: number[][], features: number, input = 'features', output = 'probability') {
  const feeds = { [input]: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, features]) };
  const result = (await session.run(feeds))[output]!;
  return { dims: [...result.dims], values: Array.from(result.data as Float32Array) };
}
function assertClose(actual: number[], expected: number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]!) <= tol, `row ${i}: onnxruntime ${a} vs mlpForward ${expected[i]} (|diff| > ${tol})`);
  });
}

describe('exportMlpToOnnx runs in onnxruntime-node and matches mlpForward', () => {
  const cases = [
    { name: 'logistic regression', seed: 1, features: 12, hidden: [] },
    { name: 'MLP with 1 hidden ReLU layer', seed: 2, features: 9, hidden: [16] },
    { name: 'MLP with 2 hidden ReLU layers', seed: 3, features: 20, hidden: [32, 8] },
  ];
  for (const c of cases) {
    test(`${c.name} (${c.features} features, hidden ${JSON.stringify(c.hidden)})`, async () => {
      const spec = randomSpec(c.seed, c.features, c.hidden);
      const bytes = exportMlpToOnnx(spec);
      assert.deepEqual(exportMlpToOnnx(spec), bytes, 'export is deterministic');
      const session = await load(bytes);
      const rng = mulberry32(c.seed * 1000);
      for (const n of [1, 7, 256]) {
        const rows = randomRows(rng, spec, n);
        const { dims, values } = await run(session, rows, c.features);
        assert.deepEqual(dims, [n, 1]);
        const expected = mlpForward(spec, rows);
        assertClose(values, expected);
        // Guard against a vacuous pass where everything saturates to 0 or 1.
        if (n === 256)
          assert.ok(
            expected.some((p) => p > 0.05 && p < 0.95),
            'some outputs are not saturated',
          );
      }
    });
  }

  test('the batch dimension is symbolic: one session serves varying batch sizes', async () => {
    const spec = randomSpec(4, 5, [6]);
    const session = await load(exportMlpToOnnx(spec));
    const meta = session.inputMetadata[0]!;
    assert.ok(meta.isTensor);
    assert.deepEqual(meta.shape, ['batch', 5]);
    const rng = mulberry32(44);
    for (const n of [256, 1, 7, 3, 1, 64]) {
      const rows = randomRows(rng, spec, n);
      const { dims, values } = await run(session, rows, 5);
      assert.deepEqual(dims, [n, 1]);
      assertClose(values, mlpForward(spec, rows));
    }
  });

  test('custom input/output names are used in the graph', async () => {
    const spec = { ...randomSpec(5, 3, []), inputName: 'x', outputName: 'p_up' };
    const session = await load(exportMlpToOnnx(spec));
    assert.deepEqual(session.inputNames, ['x']);
    assert.deepEqual(session.outputNames, ['p_up']);
    const rows = randomRows(mulberry32(55), spec, 4);
    assertClose((await run(session, rows, 3, 'x', 'p_up')).values, mlpForward(spec, rows));
  });
});

describe('readOnnxMetadata', () => {
  test('round-trips metadata, producer, opset and I/O shapes', () => {
    const metadata = {
      strategy: 'direction-1d',
      version: '2024-06-01',
      features: JSON.stringify(['ret_1d', 'ret_5d', 'vol_20d']),
      empty: '',
    };
    const spec = { ...randomSpec(6, 3, [4]), metadata };
    const info = readOnnxMetadata(exportMlpToOnnx(spec));
    assert.deepEqual(info.metadata, metadata);
    assert.equal(info.producerName, 'sibyl-train');
    assert.equal(info.opsetVersion, 13);
    assert.equal(info.irVersion, 7);
    assert.deepEqual(info.inputs, [{ name: 'features', shape: ['batch', 3], elemType: 'FLOAT' }]);
    assert.deepEqual(info.outputs, [{ name: 'probability', shape: ['batch', 1], elemType: 'FLOAT' }]);
  });

  test('reports custom names and producer; no metadata gives {}', () => {
    const spec = { ...randomSpec(7, 2, []), inputName: 'x', outputName: 'y', producerName: 'unit-test' };
    const info = readOnnxMetadata(exportMlpToOnnx(spec));
    assert.deepEqual(info.metadata, {});
    assert.equal(info.producerName, 'unit-test');
    assert.deepEqual(
      info.inputs.map((i) => i.name),
      ['x'],
    );
    assert.deepEqual(
      info.outputs.map((o) => o.name),
      ['y'],
    );
  });

  test('rejects empty, garbage and truncated input with a clear message', () => {
    const notOnnx = /^Error: not an ONNX model: /;
    const bytes = exportMlpToOnnx({ ...randomSpec(8, 4, [3]), metadata: { strategy: 'direction-1d' } });
    assert.throws(() => readOnnxMetadata(new Uint8Array(0)), /not an ONNX model: the input is empty/);
    assert.throws(() => readOnnxMetadata(new TextEncoder().encode('{"not":"a model"}')), notOnnx);
    for (let seed = 1; seed <= 50; seed++) {
      const rng = mulberry32(seed);
      const garbage = Uint8Array.from({ length: 1 + Math.floor(rng() * 2000) }, () => Math.floor(rng() * 256));
      assert.throws(() => readOnnxMetadata(garbage), notOnnx, `random bytes, seed ${seed}`);
    }
    for (const len of [1, 2, 10, Math.floor(bytes.length / 2), bytes.length - 1]) {
      assert.throws(() => readOnnxMetadata(bytes.subarray(0, len)), notOnnx, `truncated to ${len} of ${bytes.length} bytes`);
    }
    assert.throws(() => readOnnxMetadata(bytes.subarray(0, bytes.length - 1)), /corrupt or truncated/);
    // Valid protobuf that is not a model: only ir_version = 7 (field 1, varint); cut at a field boundary.
    assert.throws(() => readOnnxMetadata(Uint8Array.of(0x08, 0x07)), /not an ONNX model: it declares no opset_import/);
  });
});

describe('exportMlpToOnnx validates the spec', () => {
  const valid = (): MlpSpec => ({
    inputMean: [0, 1, 2],
    inputScale: [1, 2, 3],
    layers: [
      {
        weights: [
          [1, 2, 3],
          [4, 5, 6],
        ],
        bias: [0, 0],
        activation: 'relu',
      },
      { weights: [[1, -1]], bias: [0.5], activation: 'none' },
    ],
    outputActivation: 'sigmoid',
  });
  const cases: Array<[string, (s: MlpSpec) => void, RegExp]> = [
    [
      'empty inputMean',
      (s) => {
        s.inputMean = [];
        s.inputScale = [];
      },
      /inputMean must be a non-empty array.*got an array of length 0/,
    ],
    [
      'scale/mean length mismatch',
      (s) => {
        s.inputScale = [1, 2];
      },
      /inputScale .*must have 3 entries; got an array of length 2/,
    ],
    [
      'NaN mean',
      (s) => {
        s.inputMean[1] = NaN;
      },
      /inputMean\[1\] must be a finite number.*got NaN/,
    ],
    [
      'infinite weight',
      (s) => {
        s.layers[1]!.weights[0]![1] = -Infinity;
      },
      /layers\[1\]\.weights\[0\].*\[1\] must be a finite number.*got -Infinity/,
    ],
    [
      'weight overflowing float32',
      (s) => {
        s.layers[0]!.weights[1]![0] = 1e39;
      },
      /layers\[0\]\.weights\[1\].*\[0\] must be a finite number that fits in float32.*got 1e\+39/,
    ],
    [
      'NaN bias',
      (s) => {
        s.layers[0]!.bias[0] = NaN;
      },
      /layers\[0\]\.bias.*\[0\] must be a finite number.*got NaN/,
    ],
    [
      'zero scale',
      (s) => {
        s.inputScale[2] = 0;
      },
      /inputScale.*\[2\] must be > 0.*got 0/,
    ],
    [
      'negative scale',
      (s) => {
        s.inputScale[0] = -1;
      },
      /inputScale.*\[0\] must be > 0.*got -1/,
    ],
    [
      'scale underflowing float32',
      (s) => {
        s.inputScale[0] = 1e-50;
      },
      /inputScale.*\[0\] must be > 0.*underflow.*got 1e-50/,
    ],
    [
      'no layers',
      (s) => {
        s.layers = [];
      },
      /layers must contain at least one dense layer.*got an array of length 0/,
    ],
    [
      'layer without rows',
      (s) => {
        s.layers[0]!.weights = [];
      },
      /layers\[0\]\.weights must have at least one output row; got an array of length 0/,
    ],
    [
      'first layer weights vs feature count',
      (s) => {
        s.layers[0]!.weights[1] = [1, 2];
      },
      /layers\[0\]\.weights\[1\] \(one weight per input = the feature count\) must have 3 entries; got an array of length 2/,
    ],
    [
      'hidden layer weights vs previous width',
      (s) => {
        s.layers[1]!.weights[0] = [1, 2, 3];
      },
      /layers\[1\]\.weights\[0\] \(one weight per input = the outputs of layers\[0\]\) must have 2 entries; got an array of length 3/,
    ],
    [
      'bias vs weight rows',
      (s) => {
        s.layers[0]!.bias = [0];
      },
      /layers\[0\]\.bias \(one entry per output row of layers\[0\]\.weights\) must have 2 entries; got an array of length 1/,
    ],
    [
      'last layer with 2 outputs',
      (s) => {
        s.layers[1] = {
          weights: [
            [1, 1],
            [1, 1],
          ],
          bias: [0, 0],
          activation: 'none',
        };
      },
      /last layer \(layers\[1\]\) must have exactly 1 output row.*got "2 rows"/,
    ],
    [
      'relu on the last layer',
      (s) => {
        s.layers[1]!.activation = 'relu';
      },
      /last layer \(layers\[1\]\) must have activation 'none'.*got "relu"/,
    ],
    [
      'unknown activation',
      (s) => {
        (s.layers[0] as { activation: string }).activation = 'tanh';
      },
      /layers\[0\]\.activation must be 'relu' or 'none'; got "tanh"/,
    ],
    [
      'unknown output activation',
      (s) => {
        (s as { outputActivation: string }).outputActivation = 'softmax';
      },
      /outputActivation must be 'sigmoid'; got "softmax"/,
    ],
    [
      'empty input name',
      (s) => {
        s.inputName = '';
      },
      /inputName must be a non-empty string; got ""/,
    ],
    [
      'same input and output name',
      (s) => {
        s.inputName = 'x';
        s.outputName = 'x';
      },
      /inputName and outputName must differ; got "x"/,
    ],
    [
      'reserved name',
      (s) => {
        s.outputName = 'sibyl.centered';
      },
      /outputName must not start with 'sibyl\.'.*got "sibyl\.centered"/,
    ],
    [
      'non-string metadata',
      (s) => {
        s.metadata = { version: 3 as unknown as string };
      },
      /metadata\['version'\] must be a string.*got 3/,
    ],
  ];
  for (const [name, mutate, message] of cases) {
    test(`rejects ${name}`, () => {
      const spec = valid();
      mutate(spec);
      assert.throws(
        () => exportMlpToOnnx(spec),
        (e: Error) => e instanceof Error && /^invalid MlpSpec: /.test(e.message) && message.test(e.message),
      );
      assert.throws(() => mlpForward(spec, [[1, 2, 3]]), message, 'mlpForward applies the same rules');
    });
  }
  test('accepts the valid baseline, and mlpForward checks row widths', () => {
    assert.ok(exportMlpToOnnx(valid()).length > 0);
    assert.throws(() => mlpForward(valid(), [[1, 2]]), /rows\[0\] must have 3 features; got an array of length 2/);
  });
});
