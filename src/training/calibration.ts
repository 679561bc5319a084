import { applyPlatt, logit, sigmoid } from '../domain/calibration.js';

export { applyPlatt };

/**
 * Platt scaling: calibrated = sigmoid(a · logit(p) + b), fitted on a period the model never trained on.
 * The pair is stored in the manifest and applied by the gateway after inference, with the one
 * `applyPlatt` both share; with a = 1, b = 0 it is the identity.
 */
export interface PlattCalibration {
  readonly method: 'platt';
  readonly a: number;
  readonly b: number;
}

export function fitPlatt(p: ArrayLike<number>, y: ArrayLike<number>, iterations = 100): PlattCalibration {
  let a = 1;
  let b = 0;
  const logits = Float64Array.from({ length: p.length }, (_, i) => logit(p[i]!));
  for (let it = 0; it < iterations; it++) {
    // Newton on the 2-parameter log loss.
    let ga = 0,
      gb = 0,
      haa = 0,
      hab = 0,
      hbb = 0;
    for (let i = 0; i < logits.length; i++) {
      const q = sigmoid(a * logits[i]! + b);
      const r = q - y[i]!;
      const w = Math.max(q * (1 - q), 1e-12);
      ga += r * logits[i]!;
      gb += r;
      haa += w * logits[i]! ** 2;
      hab += w * logits[i]!;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (Math.abs(det) < 1e-18) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) + Math.abs(db) < 1e-10) break;
  }
  return { method: 'platt', a, b };
}
