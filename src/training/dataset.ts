import { excludedFrom } from '../infra/market-data/bar-quality.js';
import type { Bar } from '../infra/market-data/market-data.js';
import { FEATURE_NAMES, FEATURE_WINDOW, featuresFromSeries } from '../domain/features.js';

/**
 * Supervised samples for a direction strategy: features at bar t (from bars ≤ t only, through the very
 * function serving uses) and the label "adjusted close at t + horizon is higher than at t". The forward
 * log return and the 20-bar volatility are kept for interval calibration.
 */
export interface Samples {
  readonly featureCount: number;
  readonly x: Float64Array; // row-major [n][featureCount]
  readonly y: Uint8Array;
  readonly forwardReturn: Float64Array;
  readonly vol: Float64Array;
  readonly time: Float64Array; // asOf, epoch ms
  readonly labelTime: Float64Array; // time of the bar the label comes from
  readonly symbolIndex: Uint16Array;
  readonly symbols: readonly string[];
  readonly length: number;
}

/**
 * Whether a bar's flags leave it out of training (QUALITY_POLICY in bar-quality.ts,
 * docs/decisions/data-quality.md): a sample whose asOf or label bar is such a bar is dropped; the bar
 * still counts as history for the features of later samples. Bars carry their flags from import (CSV)
 * or from the bars store; unchecked bars (the synthetic market) are judged on their values alone, which
 * on the real data set drops exactly its 33 known flat and zero-volume vendor bars.
 */
export function isSuspectBar(bar: Bar): boolean {
  return excludedFrom('training', bar);
}

export function buildSamples(barsBySymbol: ReadonlyMap<string, readonly Bar[]>, horizonBars: number): Samples {
  const F = FEATURE_NAMES.length;
  const symbols = [...barsBySymbol.keys()].sort();
  let capacity = 0;
  for (const bars of barsBySymbol.values()) capacity += Math.max(0, bars.length - FEATURE_WINDOW - horizonBars + 1);
  const x = new Float64Array(capacity * F);
  const y = new Uint8Array(capacity);
  const forwardReturn = new Float64Array(capacity);
  const vol = new Float64Array(capacity);
  const time = new Float64Array(capacity);
  const labelTime = new Float64Array(capacity);
  const symbolIndex = new Uint16Array(capacity);
  let n = 0;
  const volIndex = FEATURE_NAMES.indexOf('vol_20d');
  symbols.forEach((symbol, s) => {
    const bars = barsBySymbol.get(symbol)!;
    const adj = Float64Array.from(bars, (b) => b.adjClose);
    const ldv = Float64Array.from(bars, (b) => Math.log(b.close * b.volume + 1));
    for (let t = FEATURE_WINDOW - 1; t + horizonBars < bars.length; t++) {
      const bar = bars[t]!;
      const labelBar = bars[t + horizonBars]!;
      if (isSuspectBar(bar) || isSuspectBar(labelBar)) continue;
      const from = t - FEATURE_WINDOW + 1;
      const features = featuresFromSeries(adj.subarray(from, t + 1), ldv.subarray(from, t + 1), bar);
      if (!features.every(Number.isFinite)) continue;
      x.set(features, n * F);
      const r = Math.log(labelBar.adjClose / bar.adjClose);
      y[n] = r > 0 ? 1 : 0;
      forwardReturn[n] = r;
      vol[n] = features[volIndex]!;
      time[n] = bar.time.getTime();
      labelTime[n] = labelBar.time.getTime();
      symbolIndex[n] = s;
      n++;
    }
  });
  return {
    featureCount: F,
    x: x.subarray(0, n * F),
    y: y.subarray(0, n),
    forwardReturn: forwardReturn.subarray(0, n),
    vol: vol.subarray(0, n),
    time: time.subarray(0, n),
    labelTime: labelTime.subarray(0, n),
    symbolIndex: symbolIndex.subarray(0, n),
    symbols,
    length: n,
  };
}

/**
 * Indices of samples whose asOf AND label both fall in [from, to): a label reaching past `to` would
 * leak the next period's prices into this one, so such samples are purged.
 */
export function selectPeriod(samples: Samples, from: Date, to: Date): Uint32Array {
  const lo = from.getTime();
  const hi = to.getTime();
  const picked: number[] = [];
  for (let i = 0; i < samples.length; i++) {
    if (samples.time[i]! >= lo && samples.labelTime[i]! < hi) picked.push(i);
  }
  return Uint32Array.from(picked);
}
