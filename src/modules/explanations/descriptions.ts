/**
 * Plain words for explanations: what a feature's value is, where it sits against the data the model was
 * trained on, and what it did to the probability. Pure functions of numbers, so they are easy to test
 * and the same explanation always reads the same.
 *
 * Where a value sits comes from the manifest's training quantiles (not from the symbol's own past: the
 * gateway sees 100 bars per symbol, too few to say "strongest in a year" honestly), e.g. "20-day
 * momentum +6.1%, in the top 5% of the training data; raises the probability 1.2 pts".
 */

export interface FeatureWording {
  /** Short name for the summary, e.g. "20-day momentum". */
  readonly label: string;
  /** The value in words, e.g. "20-day momentum +6.1%". */
  readonly value: (value: number) => string;
}

const logReturnWording = (label: string): FeatureWording => ({ label, value: (v) => `${label} ${signedPercent(Math.expm1(v), 1)}` });
const averageDistance = (bars: number): FeatureWording => ({
  label: `distance from the ${bars}-day average`,
  value: (v) => `price ${percent(Math.abs(v), 1)} ${v >= 0 ? 'above' : 'below'} its ${bars}-day average`,
});

/** Wording of the features this gateway computes (features.ts); any other name gets a generic one. */
export const FEATURE_WORDING: Readonly<Record<string, FeatureWording>> = {
  ret_1d: logReturnWording('1-day return'),
  ret_5d: logReturnWording('5-day return'),
  ret_20d: logReturnWording('20-day momentum'),
  ret_60d: logReturnWording('60-day momentum'),
  vol_20d: { label: '20-day volatility', value: (v) => `20-day volatility ${percent(v, 1)} a day` },
  vol_ratio_5_20: { label: 'recent volatility', value: (v) => `5-day volatility ${v.toFixed(2)}× the 20-day level` },
  rsi_14: {
    label: 'RSI(14)',
    value: (v) => `RSI(14) ${(v * 100).toFixed(0)}${v >= 0.7 ? ' (overbought)' : v <= 0.3 ? ' (oversold)' : ''}`,
  },
  macd_hist: { label: 'MACD histogram', value: (v) => `MACD histogram ${signedPercent(v, 2)} of price` },
  ma_dist_20: averageDistance(20),
  ma_dist_50: averageDistance(50),
  range_pos_20: {
    label: 'position in the 20-day range',
    value: (v) =>
      v >= 1 ? 'close at its 20-day high' : v <= 0 ? 'close at its 20-day low' : `close at ${(v * 100).toFixed(0)}% of its 20-day range`,
  },
  dollar_volume_z20: {
    label: 'trading volume',
    value: (v) => `dollar volume ${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)}σ against its 20-day norm`,
  },
  hl_range: { label: 'daily range', value: (v) => `day's high-low range ${percent(v, 1)} of the close` },
};

export function wordingOf(feature: string): FeatureWording {
  return FEATURE_WORDING[feature] ?? { label: feature, value: (v) => `${feature} ${Number(v.toPrecision(3))}` };
}

/**
 * Where `value` sits in a distribution given by quantiles (level as a string → value), as a fraction in
 * (0, 1): interpolated between the stored levels; at a value several levels share (a feature that is
 * often exactly 0 or 1), the middle of those levels; beyond the outermost levels, halfway to 0 or 1.
 */
export function percentileOf(value: number, quantiles: Readonly<Record<string, number>>): number {
  const points = sortedPoints(quantiles);
  if (points.length === 0 || !Number.isFinite(value)) return 0.5;
  let firstTie = -1;
  let lastTie = -1;
  for (const p of points) {
    if (p.q === value) {
      if (firstTie < 0) firstTie = p.level;
      lastTie = p.level;
    }
  }
  if (firstTie >= 0) return (firstTie + lastTie) / 2;
  const first = points[0]!;
  const last = points.at(-1)!;
  if (value < first.q) return first.level / 2;
  if (value > last.q) return (last.level + 1) / 2;
  for (let k = 1; k < points.length; k++) {
    const [lo, hi] = [points[k - 1]!, points[k]!];
    if (value < hi.q) return lo.level + ((hi.level - lo.level) * (value - lo.q)) / (hi.q - lo.q);
  }
  return last.level;
}

/** Quantile tables come from manifests, loaded once: parsed and sorted once per table, not per call. */
const parsedQuantiles = new WeakMap<object, ReadonlyArray<{ level: number; q: number }>>();

function sortedPoints(quantiles: Readonly<Record<string, number>>): ReadonlyArray<{ level: number; q: number }> {
  let points = parsedQuantiles.get(quantiles);
  if (!points) {
    points = Object.entries(quantiles)
      .map(([level, q]) => ({ level: Number(level), q }))
      .filter((p) => Number.isFinite(p.level) && Number.isFinite(p.q))
      .sort((a, b) => a.level - b.level);
    parsedQuantiles.set(quantiles, points);
  }
  return points;
}

/** "in the top 5% of the training data", "within its usual range", … */
export function rankPhrase(percentile: number): string {
  if (percentile >= 0.99) return 'higher than 99% of the training data';
  if (percentile >= 0.95) return 'in the top 5% of the training data';
  if (percentile >= 0.9) return 'in the top 10% of the training data';
  if (percentile > 0.75) return 'higher than usual (top 25% of the training data)';
  if (percentile >= 0.25) return 'within its usual range';
  if (percentile > 0.1) return 'lower than usual (bottom 25% of the training data)';
  if (percentile > 0.05) return 'in the bottom 10% of the training data';
  if (percentile > 0.01) return 'in the bottom 5% of the training data';
  return 'lower than 99% of the training data';
}

/** Below this a contribution is reported as negligible: 0.05 percentage points. */
export const NEGLIGIBLE = 0.0005;

/** "raises the probability 1.2 pts", "lowers the probability 0.30 pts", "barely moves the probability". */
export function effectPhrase(contribution: number): string {
  if (Math.abs(contribution) < NEGLIGIBLE) return 'barely moves the probability';
  return `${contribution > 0 ? 'raises' : 'lowers'} the probability ${points(Math.abs(contribution))}`;
}

export function describeFactor(feature: string, value: number, quantiles: Readonly<Record<string, number>>, contribution: number): string {
  return `${wordingOf(feature).value(value)}, ${rankPhrase(percentileOf(value, quantiles))}; ${effectPhrase(contribution)}`;
}

/**
 * One sentence: the prediction against the baseline, and the inputs that moved it most each way.
 * "54.2% against 52.1% for a typical input: raised most by 20-day momentum (+1.2 pts) and RSI(14)
 * (+0.50 pts), lowered by 5-day return (−0.80 pts)."
 */
export function summarize(
  probability: number,
  baseline: number,
  factors: ReadonlyArray<{ feature: string; contribution: number }>,
  top = 2,
): string {
  const head = `${percent(probability, 1)} against ${percent(baseline, 1)} for a typical input`;
  const named = (f: { feature: string; contribution: number }) =>
    `${wordingOf(f.feature).label} (${f.contribution > 0 ? '+' : '−'}${points(Math.abs(f.contribution))})`;
  const up = factors
    .filter((f) => f.contribution >= NEGLIGIBLE)
    .sort((a, b) => b.contribution - a.contribution)
    .slice(0, top);
  const down = factors
    .filter((f) => f.contribution <= -NEGLIGIBLE)
    .sort((a, b) => a.contribution - b.contribution)
    .slice(0, top);
  if (up.length === 0 && down.length === 0) return `${head}: no input moves it by more than ${points(NEGLIGIBLE)}.`;
  const parts: string[] = [];
  if (up.length) parts.push(`raised most by ${listed(up.map(named))}`);
  if (down.length) parts.push(`${up.length ? 'lowered' : 'lowered most'} by ${listed(down.map(named))}`);
  return `${head}: ${parts.join(', ')}.`;
}

function listed(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** Percentage points: two decimals below 1 pt, else one. */
function points(fraction: number): string {
  const pts = fraction * 100;
  return `${pts.toFixed(pts < 1 ? 2 : 1)} pts`;
}

function percent(fraction: number, digits: number): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

function signedPercent(fraction: number, digits: number): string {
  const text = percent(Math.abs(fraction), digits);
  return `${fraction >= 0 ? '+' : '−'}${text}`;
}
