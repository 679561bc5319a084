import { sigmoid } from '../domain/calibration.js';

export { sigmoid };

/**
 * L2-regularized logistic regression fitted by Newton's method (iteratively reweighted least squares).
 * Chosen over a general ML library because the model is small (a dozen features), Newton converges in a
 * handful of exact, deterministic steps with no learning rate to tune, and the result exports to ONNX
 * as one Gemm + Sigmoid.
 *
 * Features are standardized first (mean/scale are returned and folded into the ONNX graph).
 */
export interface LogisticModel {
  readonly mean: number[];
  readonly scale: number[];
  readonly weights: number[];
  readonly bias: number;
  readonly iterations: number;
}

export interface FitOptions {
  readonly l2: number;
  readonly maxIterations?: number;
  readonly tolerance?: number;
}

export function fitLogistic(x: Float64Array, y: Uint8Array, rows: Uint32Array, featureCount: number, options: FitOptions): LogisticModel {
  const F = featureCount;
  const n = rows.length;
  if (n === 0) throw new Error('fitLogistic: no training rows');
  const mean = new Array<number>(F).fill(0);
  const scale = new Array<number>(F).fill(0);
  for (const r of rows) for (let j = 0; j < F; j++) mean[j]! += x[r * F + j]!;
  for (let j = 0; j < F; j++) mean[j]! /= n;
  for (const r of rows) for (let j = 0; j < F; j++) scale[j]! += (x[r * F + j]! - mean[j]!) ** 2;
  for (let j = 0; j < F; j++) {
    const deviation = Math.sqrt(scale[j]! / n);
    // A column that never varied has a "deviation" of rounding residue (~1e-14 × its size); dividing by
    // that would turn any future value into an enormous input, so such a column is left unscaled.
    scale[j] = deviation > 1e-9 * (Math.abs(mean[j]!) + 1) ? deviation : 1;
  }

  const D = F + 1; // weights + bias (last)
  const beta = new Float64Array(D);
  const z = new Float64Array(D);
  z[F] = 1;
  let iterations = 0;
  for (; iterations < (options.maxIterations ?? 50); iterations++) {
    const gradient = new Float64Array(D);
    const hessian = new Float64Array(D * D);
    for (const r of rows) {
      for (let j = 0; j < F; j++) z[j] = (x[r * F + j]! - mean[j]!) / scale[j]!;
      let eta = 0;
      for (let j = 0; j < D; j++) eta += beta[j]! * z[j]!;
      const p = sigmoid(eta);
      const w = Math.max(p * (1 - p), 1e-12);
      const residual = p - y[r]!;
      for (let a = 0; a < D; a++) {
        gradient[a]! += residual * z[a]!;
        const wa = w * z[a]!;
        for (let b = 0; b <= a; b++) hessian[a * D + b]! += wa * z[b]!;
      }
    }
    for (let a = 0; a < D; a++) for (let b = 0; b < a; b++) hessian[b * D + a] = hessian[a * D + b]!;
    // The penalty is on the weights, not the bias; it is scaled by n so l2 means the same at any size.
    for (let j = 0; j < F; j++) {
      gradient[j]! += options.l2 * n * beta[j]!;
      hessian[j * D + j]! += options.l2 * n;
    }
    const step = solve(hessian, gradient, D);
    let change = 0;
    for (let j = 0; j < D; j++) {
      beta[j]! -= step[j]!;
      change = Math.max(change, Math.abs(step[j]!));
    }
    if (change < (options.tolerance ?? 1e-9)) {
      iterations++;
      break;
    }
  }
  return { mean, scale, weights: Array.from(beta.subarray(0, F)), bias: beta[F]!, iterations };
}

export function predictLogistic(model: LogisticModel, x: Float64Array, rows: Uint32Array, featureCount: number): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((r, i) => {
    let eta = model.bias;
    for (let j = 0; j < featureCount; j++) eta += model.weights[j]! * ((x[r * featureCount + j]! - model.mean[j]!) / model.scale[j]!);
    out[i] = sigmoid(eta);
  });
  return out;
}

/** Solves A·s = g for symmetric positive-definite A by Cholesky decomposition. */
function solve(A: Float64Array, g: Float64Array, D: number): Float64Array {
  const L = new Float64Array(D * D);
  for (let i = 0; i < D; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = A[i * D + j]!;
      for (let k = 0; k < j; k++) sum -= L[i * D + k]! * L[j * D + k]!;
      if (i === j) {
        if (sum <= 0) throw new Error('fitLogistic: Hessian is not positive definite (collinear or constant features?)');
        L[i * D + i] = Math.sqrt(sum);
      } else {
        L[i * D + j] = sum / L[j * D + j]!;
      }
    }
  }
  const tmp = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    let sum = g[i]!;
    for (let k = 0; k < i; k++) sum -= L[i * D + k]! * tmp[k]!;
    tmp[i] = sum / L[i * D + i]!;
  }
  const s = new Float64Array(D);
  for (let i = D - 1; i >= 0; i--) {
    let sum = tmp[i]!;
    for (let k = i + 1; k < D; k++) sum -= L[k * D + i]! * s[k]!;
    s[i] = sum / L[i * D + i]!;
  }
  return s;
}
