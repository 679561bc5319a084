import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from '../../../src/shared/random.js';
import { fitLogistic, predictLogistic, sigmoid, type LogisticModel } from '../../../src/training/logistic.js';

const gaussian = (rng: () => number) => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const allRows = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

/**
 * Data from a known logistic model in RAW units, with three features of very different scales:
 *   x1 ~ N(0, 1), x2 ~ N(50, 20²), x3 ~ N(0, 0.002²);  P(y=1) = σ(2.2 + 0.8·x1 − 0.05·x2 + 400·x3)
 * In standardized units the true weights are ≈ (0.8, −1.0, 0.8) and the intercept ≈ −0.3.
 */
const TRUE = { intercept: 2.2, coef: [0.8, -0.05, 400] };
function knownModelData(n: number, seed: number): { x: Float64Array; y: Uint8Array } {
  const rng = mulberry32(seed);
  const F = 3;
  const x = new Float64Array(n * F);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x1 = gaussian(rng);
    const x2 = 50 + 20 * gaussian(rng);
    const x3 = 0.002 * gaussian(rng);
    x.set([x1, x2, x3], i * F);
    const p = sigmoid(TRUE.intercept + TRUE.coef[0]! * x1 + TRUE.coef[1]! * x2 + TRUE.coef[2]! * x3);
    y[i] = rng() < p ? 1 : 0;
  }
  return { x, y };
}

/** Gradient of the penalized negative log-likelihood at `model` (standardized coordinates, bias last). */
function penalizedGradient(model: LogisticModel, x: Float64Array, y: Uint8Array, rows: Uint32Array, F: number, l2: number): number[] {
  const g = new Array<number>(F + 1).fill(0);
  const p = predictLogistic(model, x, rows, F);
  rows.forEach((r, i) => {
    const residual = p[i]! - y[r]!;
    for (let j = 0; j < F; j++) g[j]! += residual * ((x[r * F + j]! - model.mean[j]!) / model.scale[j]!);
    g[F]! += residual;
  });
  for (let j = 0; j < F; j++) g[j]! += l2 * rows.length * model.weights[j]!;
  return g;
}

const norm = (w: readonly number[]) => Math.sqrt(w.reduce((s, v) => s + v * v, 0));

describe('fitLogistic', () => {
  const N = 20_000;
  const F = 3;
  const { x, y } = knownModelData(N, 20240601);
  const rows = allRows(N);

  test('recovers the coefficients of the model that generated the data (within 4 standard errors)', () => {
    const model = fitLogistic(x, y, rows, F, { l2: 0 });

    // Standardization is the plain population mean / standard deviation of the training rows.
    for (let j = 0; j < F; j++) {
      let m = 0;
      for (let i = 0; i < N; i++) m += x[i * F + j]!;
      m /= N;
      let v = 0;
      for (let i = 0; i < N; i++) v += (x[i * F + j]! - m) ** 2;
      assert.ok(Math.abs(model.mean[j]! - m) <= 1e-9 * Math.max(1, Math.abs(m)), `mean[${j}]`);
      assert.ok(Math.abs(model.scale[j]! - Math.sqrt(v / N)) <= 1e-9 * Math.sqrt(v / N), `scale[${j}]`);
    }
    assert.ok(Math.abs(model.scale[1]! - 20) < 0.5 && Math.abs(model.scale[2]! - 0.002) < 0.0001, 'scales differ by 4 orders of magnitude');

    // Truth expressed in the model's standardized coordinates: w_j = c_j · scale_j, bias = c0 + Σ c_j · mean_j.
    const trueWeights = TRUE.coef.map((c, j) => c * model.scale[j]!);
    const trueBias = TRUE.intercept + TRUE.coef.reduce((s, c, j) => s + c * model.mean[j]!, 0);

    // Tolerance: the features are independent and standardized, so the Fisher information is ≈ n·E[p(1−p)]·I
    // and each coefficient's standard error is ≈ 1/√(n·E[p(1−p)]) (≈ 0.017 here). 4 SE keeps a correct fit
    // well inside (and the seed is fixed), while a wrong scale, sign or gradient misses by far more.
    const p = predictLogistic(model, x, rows, F);
    const info = p.reduce((s, v) => s + v * (1 - v), 0);
    const se = 1 / Math.sqrt(info);
    assert.ok(se > 0.01 && se < 0.03, `se ${se}`);
    model.weights.forEach((w, j) => assert.ok(Math.abs(w - trueWeights[j]!) < 4 * se, `weight ${j}: ${w} vs ${trueWeights[j]} (se ${se})`));
    assert.ok(Math.abs(model.bias - trueBias) < 4 * se, `bias ${model.bias} vs ${trueBias}`);

    // Back in raw units the coefficients are the generating ones (relative error follows from the above).
    const raw = model.weights.map((w, j) => w / model.scale[j]!);
    raw.forEach((c, j) => assert.ok(Math.abs(c / TRUE.coef[j]! - 1) < 0.1, `raw coef ${j}: ${c} vs ${TRUE.coef[j]}`));

    // It is the maximum-likelihood estimate: the gradient vanishes (an exact property, not a statistical one).
    for (const g of penalizedGradient(model, x, y, rows, F, 0)) assert.ok(Math.abs(g) < 1e-6, `gradient ${g}`);
    // Newton converges in a handful of steps.
    assert.ok(model.iterations >= 2 && model.iterations <= 12, `iterations ${model.iterations}`);
  });

  test('uses only the given rows (a subset fits the subset, in any order)', () => {
    const subset = Uint32Array.from({ length: 5000 }, (_, i) => 3 * i + 1);
    const reversed = Uint32Array.from(subset).reverse();
    const a = fitLogistic(x, y, subset, F, { l2: 0.01 });
    const b = fitLogistic(x, y, reversed, F, { l2: 0.01 });
    a.weights.forEach((w, j) => assert.ok(Math.abs(w - b.weights[j]!) < 1e-9));
    assert.ok(Math.abs(a.bias - b.bias) < 1e-9);
    const full = fitLogistic(x, y, rows, F, { l2: 0.01 });
    assert.notEqual(a.weights[0], full.weights[0]);
    for (const g of penalizedGradient(a, x, y, subset, F, 0.01)) assert.ok(Math.abs(g) < 1e-6, `gradient ${g}`);
  });

  test('L2 shrinks the weights towards 0 monotonically as l2 grows; the unpenalized bias goes to logit(base rate)', () => {
    const grid = [0, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100];
    const models = grid.map((l2) => fitLogistic(x, y, rows, F, { l2 }));
    const norms = models.map((m) => norm(m.weights));
    for (let k = 1; k < grid.length; k++)
      assert.ok(norms[k]! < norms[k - 1]!, `‖w‖ at l2=${grid[k]} (${norms[k]}) < at l2=${grid[k - 1]} (${norms[k - 1]})`);
    // Every fit is the exact minimizer of its own penalized loss.
    models.forEach((m, k) => {
      for (const g of penalizedGradient(m, x, y, rows, F, grid[k]!)) assert.ok(Math.abs(g) < 1e-6 * N, `l2=${grid[k]}: gradient ${g}`);
    });
    // Huge l2: weights ≈ cov(y, z)/l2 → tiny; the bias is not penalized, so mean(p) = mean(y).
    const strongest = models.at(-1)!;
    assert.ok(norms.at(-1)! < 0.01, `‖w‖ ${norms.at(-1)}`);
    const baseRate = y.reduce((s, v) => s + v, 0) / N;
    assert.ok(Math.abs(strongest.bias - Math.log(baseRate / (1 - baseRate))) < 0.01, `bias ${strongest.bias}`);
    // The weights keep their signs while shrinking.
    for (const m of models) assert.deepEqual(m.weights.map(Math.sign), [1, -1, 1]);
  });

  test('zero rows throws with its message', () => {
    assert.throws(() => fitLogistic(x, y, new Uint32Array(0), F, { l2: 0.1 }), { message: 'fitLogistic: no training rows' });
  });

  test('a constant column of 0s: scale 1, weight exactly 0 with l2 > 0; with l2 = 0 the Hessian is singular and it throws', () => {
    const n = 4000;
    const x2 = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      x2[i * 2] = x[i * F]!;
      x2[i * 2 + 1] = 0;
    }
    const model = fitLogistic(x2, y, allRows(n), 2, { l2: 1e-3 });
    assert.equal(model.mean[1], 0);
    assert.equal(model.scale[1], 1);
    assert.equal(model.weights[1], 0);
    assert.ok(model.weights[0]! > 0.3);
    // The constant feature has no influence on predictions, whatever its value at prediction time.
    const probe = new Float64Array([0.5, 0, 0.5, 1000]);
    const [p0, p1] = predictLogistic(model, probe, Uint32Array.of(0, 1), 2);
    assert.equal(p0, p1);
    // What actually happens without a penalty: the explicit error, not NaN weights.
    assert.throws(() => fitLogistic(x2, y, allRows(n), 2, { l2: 0 }), /Hessian is not positive definite/);
  });

  // Regression, fixed (src/training/logistic.ts): an `|| 1` guard only caught a variance of exactly 0. For a constant
  // column whose value is not exactly representable after summing value/n n times (0.1, 3.7, …) the
  // computed mean is off by rounding (0.1 → 0.10000000000002962), so the "scale" is that rounding residue
  // (≈3e-14) instead of 1. The standardized column is then a constant ±1 (collinear with the bias); the
  // fitted weight is rounding noise (≈ 5e-15) multiplied at prediction time by (x − mean)/3e-14, so a
  // value that differs from the training constant moves the probability arbitrarily (0.52 → 1 below).
  // The same mean/scale are folded into the exported ONNX graph.
  test('a constant non-zero column (0.1) is left unscaled and cannot dominate predictions', () => {
    const n = 20_000;
    const x2 = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      x2[i * 2] = x[i * F]!;
      x2[i * 2 + 1] = 0.1;
    }
    const model = fitLogistic(x2, y, allRows(n), 2, { l2: 1e-3 });
    const probe = new Float64Array([0.5, 0.1, 0.5, 1000]);
    const [atTrainingValue, atOtherValue] = predictLogistic(model, probe, Uint32Array.of(0, 1), 2);
    assert.ok(
      Math.abs(atTrainingValue! - atOtherValue!) < 1e-9,
      `a feature that never varied in training moves P from ${atTrainingValue} to ${atOtherValue} (scale ${model.scale[1]}, weight ${model.weights[1]})`,
    );
    assert.equal(model.scale[1], 1, `scale of a constant column is ${model.scale[1]}`);
  });
});

describe('predictLogistic', () => {
  const model: LogisticModel = { mean: [1, -2], scale: [2, 0.5], weights: [0.5, -1], bias: 0.25, iterations: 0 };
  // rows: r0 = (3, −1) → z = (1, 2); r1 = (1, −2) → z = (0, 0); r2 = (−1, −3) → z = (−1, −2)
  const x = new Float64Array([3, -1, 1, -2, -1, -3]);

  test('equals σ(bias + Σ w·(x − mean)/scale) computed by hand, for the requested rows in the requested order', () => {
    const p = predictLogistic(model, x, Uint32Array.of(2, 0, 1), 2);
    assert.equal(p.length, 3);
    // η(r2) = 0.25 − 0.5 + 2 = 1.75;  η(r0) = 0.25 + 0.5 − 2 = −1.25;  η(r1) = 0.25
    assert.ok(Math.abs(p[0]! - 0.8519528019683106) < 1e-15, String(p[0]));
    assert.ok(Math.abs(p[1]! - 0.22270013882530884) < 1e-15, String(p[1]));
    assert.ok(Math.abs(p[2]! - 0.5621765008857981) < 1e-15, String(p[2]));
    assert.ok(Math.abs(p[0]! - 1 / (1 + Math.exp(-1.75))) < 1e-15);
    assert.equal(predictLogistic(model, x, new Uint32Array(0), 2).length, 0);
  });

  test('saturates to 0 / 1 without NaN for huge logits', () => {
    const huge = predictLogistic(model, new Float64Array([1e6, -2, -1e6, -2]), Uint32Array.of(0, 1), 2);
    assert.equal(huge[0], 1);
    assert.equal(huge[1], 0);
    assert.equal(sigmoid(-800), 0);
    assert.equal(sigmoid(800), 1);
    assert.equal(sigmoid(0), 0.5);
    assert.ok(Math.abs(sigmoid(-3) + sigmoid(3) - 1) < 1e-15);
  });
});
