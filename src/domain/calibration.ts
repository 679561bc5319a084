/**
 * Platt scaling as served: calibrated = sigmoid(a · logit(p) + b). Training fits (a, b) and the gateway
 * applies them with this same function, so the probability a manifest's metrics describe is exactly the
 * one clients receive.
 */
export function applyPlatt(calibration: { readonly method?: 'platt'; readonly a: number; readonly b: number }, p: number): number {
  return sigmoid(calibration.a * logit(p) + calibration.b);
}

/** Clamped away from 0 and 1, where the logit is infinite. */
export function logit(p: number): number {
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return Math.log(q / (1 - q));
}

/** Written in two branches so neither exp() can overflow. */
export function sigmoid(t: number): number {
  return t >= 0 ? 1 / (1 + Math.exp(-t)) : Math.exp(t) / (1 + Math.exp(t));
}
