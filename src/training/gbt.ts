import { sigmoid } from '../domain/calibration.js';

/**
 * Gradient-boosted regression trees on the logistic loss (Newton leaves, as in XGBoost/LightGBM, without
 * their randomness): the second model family beside the logistic regression (issue 22).
 *
 * Every comparison is made on the feature rounded to float32, against a threshold that is itself a
 * float32 feature value, because that is what onnxruntime's TreeEnsembleRegressor does with the float
 * tensor the gateway feeds it: a row then takes the same path in training, in `predictGbt` and in the
 * exported graph, and the leaf values are stored as float32 from the start. So the only difference left
 * between TS and ONNX is the float32 sum of a few hundred leaf values.
 *
 * Splits are searched on histograms of up to `bins` quantile cut points per feature (of the training
 * rows), which keeps a tree at O(rows × features) per level. Nothing is sampled, so the same data
 * always gives the same trees.
 */
export interface GbtTree {
  /** Node arrays, node 0 the root. A leaf has feature −1 (and left = right = −1). */
  readonly feature: number[];
  /** float32: a row goes left when fround(x[feature]) ≤ threshold (ONNX mode BRANCH_LEQ). */
  readonly threshold: number[];
  readonly left: number[];
  readonly right: number[];
  /** float32 leaf values (learning rate included); 0 for branch nodes. */
  readonly value: number[];
}

export interface GbtModel {
  /** float32 log-odds every row starts from: the training base rate's. */
  readonly baseScore: number;
  readonly trees: GbtTree[];
  readonly options: Required<GbtOptions>;
  /** Validation log loss after each tree count 0…(trees tried); the model keeps the best prefix. */
  readonly validationLogLoss: number[];
}

export interface GbtOptions {
  readonly maxTrees?: number;
  readonly maxDepth?: number;
  readonly learningRate?: number;
  /** A split is allowed only when both children keep at least this many training rows. */
  readonly minSamplesLeaf?: number;
  /** L2 penalty on leaf values (added to the Hessian sum). */
  readonly l2?: number;
  /** Quantile cut points per feature, at most. */
  readonly bins?: number;
  /** Stop when the validation log loss has not improved for this many trees. */
  readonly patience?: number;
}

export const GBT_DEFAULTS: Required<GbtOptions> = {
  maxTrees: 300,
  maxDepth: 3,
  learningRate: 0.05,
  minSamplesLeaf: 200,
  l2: 1,
  bins: 64,
  patience: 30,
};

const f32 = Math.fround;
const EPS = 1e-15;

export function fitGbt(
  x: Float64Array,
  y: Uint8Array,
  train: Uint32Array,
  validation: Uint32Array,
  featureCount: number,
  options: GbtOptions = {},
): GbtModel {
  const o: Required<GbtOptions> = { ...GBT_DEFAULTS, ...options };
  const F = featureCount;
  const n = train.length;
  if (n === 0) throw new Error('fitGbt: no training rows');
  if (validation.length === 0) throw new Error('fitGbt: no validation rows (early stopping needs them)');

  // Cut points: distinct float32 training values at equal-frequency positions; bin(v) = #cuts < v, so
  // "bin ≤ b" is exactly "v ≤ cuts[b]".
  const cuts: Float32Array[] = [];
  for (let j = 0; j < F; j++) {
    const values = Float32Array.from(train, (r) => x[r * F + j]!).sort();
    const picked: number[] = [];
    for (let k = 1; k < o.bins; k++) {
      const v = values[Math.min(n - 1, Math.floor((k * n) / o.bins))]!;
      // The largest value cannot split (nothing is above it).
      if (v < values[n - 1]! && (picked.length === 0 || v > picked.at(-1)!)) picked.push(v);
    }
    cuts.push(Float32Array.from(picked));
  }
  const maxBins = Math.max(1, ...cuts.map((c) => c.length + 1));
  const binned = new Uint8Array(n * F);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < F; j++) binned[i * F + j] = binOf(cuts[j]!, f32(x[train[i]! * F + j]!));
  }

  let positives = 0;
  for (const r of train) positives += y[r]!;
  const rate = Math.min(Math.max(positives / n, 1e-6), 1 - 1e-6);
  const baseScore = f32(Math.log(rate / (1 - rate)));
  const scoreTrain = new Float64Array(n).fill(baseScore);
  const scoreValidation = new Float64Array(validation.length).fill(baseScore);
  const yValidation = Uint8Array.from(validation, (r) => y[r]!);

  const g = new Float64Array(n);
  const h = new Float64Array(n);
  const trees: GbtTree[] = [];
  const losses = [logLoss(scoreValidation, yValidation)];
  let best = 0;
  for (let t = 0; t < o.maxTrees && t - best < o.patience; t++) {
    for (let i = 0; i < n; i++) {
      const p = sigmoid(scoreTrain[i]!);
      g[i] = p - y[train[i]!]!;
      h[i] = Math.max(p * (1 - p), 1e-12);
    }
    const tree = growTree(binned, cuts, F, maxBins, g, h, o);
    trees.push(tree);
    for (let i = 0; i < n; i++) scoreTrain[i]! += leafOf(tree, x, train[i]! * F);
    validation.forEach((r, i) => (scoreValidation[i]! += leafOf(tree, x, r * F)));
    losses.push(logLoss(scoreValidation, yValidation));
    if (losses.at(-1)! < losses[best]!) best = trees.length;
  }
  return { baseScore, trees: trees.slice(0, best), options: o, validationLogLoss: losses };
}

/** P(event) of each row, exactly as the exported graph computes it, except that the sum is in float64. */
export function predictGbt(model: GbtModel, x: Float64Array, rows: Uint32Array, featureCount: number): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((r, i) => {
    let score = model.baseScore;
    for (const tree of model.trees) score += leafOf(tree, x, r * featureCount);
    out[i] = sigmoid(score);
  });
  return out;
}

function binOf(cuts: Float32Array, v: number): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cuts[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function leafOf(tree: GbtTree, x: Float64Array, offset: number): number {
  let node = 0;
  while (tree.feature[node]! >= 0) {
    node = f32(x[offset + tree.feature[node]!]!) <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
  }
  return tree.value[node]!;
}

interface Pending {
  node: number;
  rows: Uint32Array;
  depth: number;
}

function growTree(
  binned: Uint8Array,
  cuts: Float32Array[],
  F: number,
  maxBins: number,
  g: Float64Array,
  h: Float64Array,
  o: Required<GbtOptions>,
): GbtTree {
  const tree = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], value: [] as number[] };
  const addNode = () => {
    tree.feature.push(-1);
    tree.threshold.push(0);
    tree.left.push(-1);
    tree.right.push(-1);
    tree.value.push(0);
    return tree.feature.length - 1;
  };
  const all = Uint32Array.from({ length: g.length }, (_, i) => i);
  const queue: Pending[] = [{ node: addNode(), rows: all, depth: 0 }];
  const sumG = new Float64Array(F * maxBins);
  const sumH = new Float64Array(F * maxBins);
  const count = new Uint32Array(F * maxBins);
  while (queue.length) {
    const { node, rows, depth } = queue.shift()!;
    let G = 0;
    let H = 0;
    for (const i of rows) {
      G += g[i]!;
      H += h[i]!;
    }
    const split = depth < o.maxDepth && rows.length >= 2 * o.minSamplesLeaf ? bestSplit() : undefined;
    if (!split) {
      tree.value[node] = f32((-o.learningRate * G) / (H + o.l2));
      continue;
    }
    tree.feature[node] = split.feature;
    tree.threshold[node] = cuts[split.feature]![split.bin]!;
    const leftRows = rows.filter((i) => binned[i * F + split.feature]! <= split.bin);
    const rightRows = rows.filter((i) => binned[i * F + split.feature]! > split.bin);
    const l = addNode();
    const r = addNode();
    tree.left[node] = l;
    tree.right[node] = r;
    queue.push({ node: l, rows: leftRows, depth: depth + 1 }, { node: r, rows: rightRows, depth: depth + 1 });

    function bestSplit(): { feature: number; bin: number } | undefined {
      sumG.fill(0);
      sumH.fill(0);
      count.fill(0);
      for (const i of rows) {
        for (let j = 0; j < F; j++) {
          const k = j * maxBins + binned[i * F + j]!;
          sumG[k]! += g[i]!;
          sumH[k]! += h[i]!;
          count[k]!++;
        }
      }
      const parent = (G * G) / (H + o.l2);
      let best: { feature: number; bin: number; gain: number } | undefined;
      for (let j = 0; j < F; j++) {
        let gl = 0;
        let hl = 0;
        let nl = 0;
        for (let b = 0; b < cuts[j]!.length; b++) {
          const k = j * maxBins + b;
          gl += sumG[k]!;
          hl += sumH[k]!;
          nl += count[k]!;
          if (nl < o.minSamplesLeaf) continue;
          if (rows.length - nl < o.minSamplesLeaf) break;
          const gain = (gl * gl) / (hl + o.l2) + ((G - gl) * (G - gl)) / (H - hl + o.l2) - parent;
          // Strictly greater: ties keep the first (lowest feature, lowest bin), so the order is fixed.
          if (gain > 1e-12 && (!best || gain > best.gain)) best = { feature: j, bin: b, gain };
        }
      }
      return best;
    }
  }
  return tree;
}

function logLoss(score: Float64Array, y: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < score.length; i++) {
    const p = Math.min(Math.max(sigmoid(score[i]!), EPS), 1 - EPS);
    sum -= y[i] ? Math.log(p) : Math.log(1 - p);
  }
  return sum / score.length;
}
