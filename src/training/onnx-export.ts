/**
 * Writes small MLPs / logistic regressions as ONNX models that onnxruntime-node serves.
 *
 * Graph: features[batch, F] → Sub(mean) → Div(scale) → (Gemm(transB=1) [→ Relu])* → Sigmoid → probability[batch, 1]
 *
 * Versions: opset 13 of the default domain with ir_version 7, the pair that shipped together in
 * ONNX 1.8. Both are within what the bundled onnx-proto schema (ONNX 1.10, IR <= 8) describes, and
 * onnxruntime-node 1.30 loads them (the tests run every export). Gemm and Sigmoid are still at their
 * opset-13 versions and Relu/Sub/Div have only gained integer types since: a newer opset buys
 * nothing for float models, and staying at 13 keeps the files loadable by older runtimes.
 */
import onnxProto from 'onnx-proto';
import type { onnx as proto } from 'onnx-proto';

// onnx-proto is CommonJS whose `module.exports` is the protobufjs root; Node's ESM loader only sees it
// as the default export, so the named `onnx` namespace has to be taken from there.
const { onnx } = onnxProto;

export interface DenseLayer {
  /** [outputs][inputs], i.e. the layout Gemm wants with transB=1. */
  weights: number[][];
  bias: number[];
  activation: 'relu' | 'none';
}

export interface MlpSpec {
  /** Standardization folded into the graph so raw features go in: x' = (x - mean) / scale */
  inputMean: number[];
  inputScale: number[];
  /** The last layer has exactly 1 output; a logistic regression is one layer. */
  layers: DenseLayer[];
  /** The output is P(event). */
  outputActivation: 'sigmoid';
  /** Default 'features'. */
  inputName?: string;
  /** Default 'probability'. */
  outputName?: string;
  /** Written as ONNX metadata_props (strategy, version, feature names…). */
  metadata?: Record<string, string>;
  /** Default 'sibyl-train'. */
  producerName?: string;
}

export const ONNX_IR_VERSION = 7;
export const ONNX_OPSET_VERSION = 13;
/** Name of the symbolic first dimension, so one session serves any batch size. */
export const BATCH_DIM = 'batch';

const DEFAULT_INPUT = 'features';
const DEFAULT_OUTPUT = 'probability';
const DEFAULT_PRODUCER = 'sibyl-train';
// Internal tensor names carry a prefix so they are unlikely to collide with caller-chosen I/O names;
// a collision would silently rewire the graph, so validation still rejects one.
const P = 'sibyl.';

/** Shows a bad value in an error message; JSON alone would print NaN and ±Infinity as null. */
function show(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function fail(rule: string, got: unknown): never {
  throw new Error(`invalid MlpSpec: ${rule}; got ${show(got)}`);
}

function failTree(rule: string, got: unknown): never {
  throw new Error(`invalid TreeEnsembleSpec: ${rule}; got ${show(got)}`);
}

/** Values are stored as float32, so finiteness and positivity are judged after rounding to float32. */
function checkNumbers(values: unknown, path: string, length: number, positive = false): void {
  if (!Array.isArray(values)) fail(`${path} must be an array of ${length} numbers`, values);
  if (values.length !== length) fail(`${path} must have ${length} entries`, values);
  values.forEach((v: unknown, i) => {
    if (typeof v !== 'number' || !Number.isFinite(Math.fround(v))) {
      fail(`${path}[${i}] must be a finite number that fits in float32 (|x| < 3.4e38)`, v);
    }
    if (positive && !(Math.fround(v) > 0)) {
      fail(`${path}[${i}] must be > 0 (standardization divides by it) and not underflow to 0 in float32`, v);
    }
  });
}

function ioNames(spec: MlpSpec): { input: string; output: string } {
  return { input: spec.inputName ?? DEFAULT_INPUT, output: spec.outputName ?? DEFAULT_OUTPUT };
}

/** Throws an Error restating the broken rule and showing the bad value; returns the feature count. */
export function validateMlpSpec(spec: MlpSpec): number {
  if (!Array.isArray(spec.inputMean) || spec.inputMean.length === 0) {
    fail('inputMean must be a non-empty array (one entry per feature)', spec.inputMean);
  }
  const features = spec.inputMean.length;
  checkNumbers(spec.inputMean, 'inputMean', features);
  checkNumbers(spec.inputScale, `inputScale (one entry per feature, like inputMean)`, features, true);

  if (!Array.isArray(spec.layers) || spec.layers.length === 0) {
    fail('layers must contain at least one dense layer (a logistic regression is one layer)', spec.layers);
  }
  let width = features;
  spec.layers.forEach((layer, l) => {
    const at = `layers[${l}]`;
    const from = l === 0 ? 'the feature count' : `the outputs of layers[${l - 1}]`;
    if (!Array.isArray(layer.weights) || layer.weights.length === 0) {
      fail(`${at}.weights must have at least one output row`, layer.weights);
    }
    layer.weights.forEach((row, o) => checkNumbers(row, `${at}.weights[${o}] (one weight per input = ${from})`, width));
    checkNumbers(layer.bias, `${at}.bias (one entry per output row of ${at}.weights)`, layer.weights.length);
    if (layer.activation !== 'relu' && layer.activation !== 'none') {
      fail(`${at}.activation must be 'relu' or 'none'`, layer.activation);
    }
    width = layer.weights.length;
  });
  const last = spec.layers.length - 1;
  const lastLayer = spec.layers[last]!;
  if (lastLayer.weights.length !== 1) {
    fail(`the last layer (layers[${last}]) must have exactly 1 output row (the logit of P(event))`, `${lastLayer.weights.length} rows`);
  }
  // A ReLU before the sigmoid clamps the logit at 0, i.e. P(event) >= 0.5 always: surely a mistake.
  if (lastLayer.activation !== 'none') {
    fail(`the last layer (layers[${last}]) must have activation 'none' (the sigmoid is applied after it)`, lastLayer.activation);
  }
  if (spec.outputActivation !== 'sigmoid') fail(`outputActivation must be 'sigmoid'`, spec.outputActivation);

  const { input, output } = ioNames(spec);
  for (const [key, name] of [
    ['inputName', input],
    ['outputName', output],
  ] as const) {
    if (typeof name !== 'string' || name.length === 0) fail(`${key} must be a non-empty string`, name);
    if (name.startsWith(P)) fail(`${key} must not start with '${P}' (reserved for internal tensors)`, name);
  }
  if (input === output) fail('inputName and outputName must differ', output);
  if (spec.producerName !== undefined && typeof spec.producerName !== 'string') {
    fail('producerName must be a string', spec.producerName);
  }
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    if (key.length === 0) fail('metadata keys must be non-empty', key);
    if (typeof value !== 'string') fail(`metadata['${key}'] must be a string (ONNX metadata_props are string→string)`, value);
  }
  return features;
}

/** Float32 initializer stored as raw little-endian bytes, as the ONNX spec requires regardless of host. */
function floatTensor(name: string, dims: number[], values: number[]): proto.ITensorProto {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

function floatValueInfo(name: string, dims: Array<number | string>): proto.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } };
}

export function exportMlpToOnnx(spec: MlpSpec): Uint8Array {
  const features = validateMlpSpec(spec);
  const { input, output } = ioNames(spec);
  const nodes: proto.INodeProto[] = [];
  const initializer: proto.ITensorProto[] = [
    floatTensor(`${P}input_mean`, [features], spec.inputMean),
    floatTensor(`${P}input_scale`, [features], spec.inputScale),
  ];
  nodes.push({ opType: 'Sub', name: `${P}center`, input: [input, `${P}input_mean`], output: [`${P}centered`] });
  nodes.push({ opType: 'Div', name: `${P}scale`, input: [`${P}centered`, `${P}input_scale`], output: [`${P}standardized`] });

  let current = `${P}standardized`;
  spec.layers.forEach((layer, l) => {
    const outs = layer.weights.length;
    const ins = layer.weights[0]!.length;
    initializer.push(floatTensor(`${P}layer${l}.weight`, [outs, ins], layer.weights.flat()));
    initializer.push(floatTensor(`${P}layer${l}.bias`, [outs], layer.bias));
    const linear = `${P}layer${l}.linear`;
    nodes.push({
      opType: 'Gemm',
      name: `${P}layer${l}.gemm`,
      input: [current, `${P}layer${l}.weight`, `${P}layer${l}.bias`],
      output: [linear],
      // weights are [outputs][inputs] (the PyTorch/Keras-transposed convention), so Y = X·Wᵀ + b
      attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
    });
    current = linear;
    if (layer.activation === 'relu') {
      nodes.push({ opType: 'Relu', name: `${P}layer${l}.relu`, input: [linear], output: [`${P}layer${l}.relu`] });
      current = `${P}layer${l}.relu`;
    }
  });
  nodes.push({ opType: 'Sigmoid', name: `${P}sigmoid`, input: [current], output: [output] });

  const model: proto.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET_VERSION }],
    producerName: spec.producerName ?? DEFAULT_PRODUCER,
    graph: {
      name: 'sibyl_mlp',
      node: nodes,
      initializer,
      input: [floatValueInfo(input, [BATCH_DIM, features])],
      output: [floatValueInfo(output, [BATCH_DIM, 1])],
    },
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}

/** Pure-JS forward pass with float32 rounding of weights, used by tests and to smoke-check exports. */
export function mlpForward(spec: MlpSpec, rows: number[][]): number[] {
  const features = validateMlpSpec(spec);
  const f = Math.fround;
  return rows.map((row, r) => {
    if (!Array.isArray(row) || row.length !== features) {
      throw new Error(`mlpForward: rows[${r}] must have ${features} features; got ${show(row)}`);
    }
    // Inputs are rounded too: the runtime receives them as a Float32Array.
    let h = row.map((x, j) => (f(x) - f(spec.inputMean[j]!)) / f(spec.inputScale[j]!));
    for (const layer of spec.layers) {
      h = layer.weights.map((w, o) => {
        let s = f(layer.bias[o]!);
        for (let j = 0; j < w.length; j++) s += f(w[j]!) * h[j]!;
        return layer.activation === 'relu' ? Math.max(0, s) : s;
      });
    }
    return 1 / (1 + Math.exp(-h[0]!));
  });
}

/** ai.onnx.ml opset shipped with ONNX 1.8 beside opset 13 (TreeEnsembleRegressor is at version 1 there). */
export const ONNX_ML_OPSET_VERSION = 2;

export interface TreeEnsembleSpec {
  /** Node arrays per tree (node 0 the root); a leaf has feature −1. A row goes left when x ≤ threshold. */
  trees: ReadonlyArray<{
    readonly feature: readonly number[];
    readonly threshold: readonly number[];
    readonly left: readonly number[];
    readonly right: readonly number[];
    readonly value: readonly number[];
  }>;
  /** Added to the sum of the leaves: the logit every row starts from. */
  baseScore: number;
  featureCount: number;
  inputName?: string;
  outputName?: string;
  metadata?: Record<string, string>;
  producerName?: string;
}

/**
 * Gradient-boosted trees as ONNX: features[batch, F] → ai.onnx.ml TreeEnsembleRegressor (SUM, one
 * target, base value = baseScore) → Sigmoid → probability[batch, 1], the same I/O as exportMlpToOnnx
 * so the gateway serves either without knowing which it has.
 */
export function exportTreeEnsembleToOnnx(spec: TreeEnsembleSpec): Uint8Array {
  const input = spec.inputName ?? DEFAULT_INPUT;
  const output = spec.outputName ?? DEFAULT_OUTPUT;
  if (!Number.isInteger(spec.featureCount) || spec.featureCount < 1) failTree('featureCount must be a positive integer', spec.featureCount);
  if (!Number.isFinite(Math.fround(spec.baseScore))) failTree('baseScore must be a finite float32', spec.baseScore);
  for (const name of [input, output]) {
    if (typeof name !== 'string' || name.length === 0 || name.startsWith(P))
      failTree(`input and output names must be non-empty and not start with '${P}'`, name);
  }
  if (input === output) failTree('inputName and outputName must differ', output);
  if (spec.trees.length === 0)
    failTree('trees must hold at least one tree (a model of no trees is a constant: export it as one)', spec.trees);
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const values: number[] = [];
  const modes: Uint8Array[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const targetTree: number[] = [];
  const targetNode: number[] = [];
  const targetWeight: number[] = [];
  const encoder = new TextEncoder();
  spec.trees.forEach((tree, t) => {
    const size = tree.feature.length;
    for (const [key, list] of Object.entries(tree)) {
      if (list.length !== size) failTree(`trees[${t}].${key} must have one entry per node (${size})`, list);
    }
    for (let node = 0; node < size; node++) {
      const leaf = tree.feature[node]! < 0;
      const at = `trees[${t}] node ${node}`;
      if (!leaf) {
        if (!(tree.feature[node]! < spec.featureCount)) failTree(`${at}: feature must be < featureCount`, tree.feature[node]);
        for (const child of [tree.left[node]!, tree.right[node]!]) {
          if (!(Number.isInteger(child) && child > node && child < size))
            failTree(`${at}: children must be later nodes of the same tree`, child);
        }
        if (!Number.isFinite(Math.fround(tree.threshold[node]!)))
          failTree(`${at}: threshold must be a finite float32`, tree.threshold[node]);
      } else if (!Number.isFinite(Math.fround(tree.value[node]!))) failTree(`${at}: leaf value must be a finite float32`, tree.value[node]);
      treeIds.push(t);
      nodeIds.push(node);
      featureIds.push(leaf ? 0 : tree.feature[node]!);
      values.push(leaf ? 0 : tree.threshold[node]!);
      modes.push(encoder.encode(leaf ? 'LEAF' : 'BRANCH_LEQ'));
      trueIds.push(leaf ? 0 : tree.left[node]!);
      falseIds.push(leaf ? 0 : tree.right[node]!);
      if (leaf) {
        targetTree.push(t);
        targetNode.push(node);
        targetWeight.push(tree.value[node]!);
      }
    }
  });
  const ints = (name: string, list: number[]): proto.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints: list,
  });
  const floats = (name: string, list: number[]): proto.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.FLOATS,
    floats: list,
  });
  const strings = (name: string, list: Uint8Array[]): proto.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.STRINGS,
    strings: list,
  });
  const string = (name: string, value: string): proto.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.STRING,
    s: encoder.encode(value),
  });
  const nodes: proto.INodeProto[] = [
    {
      opType: 'TreeEnsembleRegressor',
      domain: 'ai.onnx.ml',
      name: `${P}trees`,
      input: [input],
      output: [`${P}score`],
      attribute: [
        { name: 'n_targets', type: onnx.AttributeProto.AttributeType.INT, i: 1 },
        string('aggregate_function', 'SUM'),
        string('post_transform', 'NONE'),
        floats('base_values', [spec.baseScore]),
        ints('nodes_treeids', treeIds),
        ints('nodes_nodeids', nodeIds),
        ints('nodes_featureids', featureIds),
        floats('nodes_values', values),
        strings('nodes_modes', modes),
        ints('nodes_truenodeids', trueIds),
        ints('nodes_falsenodeids', falseIds),
        ints('target_treeids', targetTree),
        ints('target_nodeids', targetNode),
        ints('target_ids', new Array<number>(targetTree.length).fill(0)),
        floats('target_weights', targetWeight),
      ],
    },
    { opType: 'Sigmoid', name: `${P}sigmoid`, input: [`${P}score`], output: [output] },
  ];
  const model: proto.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [
      { domain: '', version: ONNX_OPSET_VERSION },
      { domain: 'ai.onnx.ml', version: ONNX_ML_OPSET_VERSION },
    ],
    producerName: spec.producerName ?? DEFAULT_PRODUCER,
    graph: {
      name: 'sibyl_gbt',
      node: nodes,
      input: [floatValueInfo(input, [BATCH_DIM, spec.featureCount])],
      output: [floatValueInfo(output, [BATCH_DIM, 1])],
    },
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(model).finish();
}
