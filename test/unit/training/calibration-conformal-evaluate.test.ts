import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from '../../../src/shared/random.js';
import { applyPlatt, fitPlatt } from '../../../src/training/calibration.js';
import { INTERVAL_LEVELS, coverage, fitConformal, type IntervalRows } from '../../../src/training/conformal.js';
import { FEATURE_NAMES } from '../../../src/domain/features.js';
import { VOL20_SCALE, intervalScale, intervalScore } from '../../../src/domain/intervals.js';
import { binaryMetrics, calibrationBins, expectedCalibrationError } from '../../../src/training/evaluate.js';
import { sigmoid } from '../../../src/training/logistic.js';

const gaussian = (rng: () => number) => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const close = (actual: number | null, expected: number, tol = 1e-12, what = '') =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

describe('binaryMetrics', () => {
  // i:           0    1    2    3    4    5    6    7
  const p = [0.9, 0.8, 0.3, 0.6, 0.1, 1.0, 0.5, 0.05];
  const y = [1, 0, 0, 1, 0, 1, 0, 1];

  test('a tiny example against hand-computed values', () => {
    const m = binaryMetrics(p, y);
    // predicted at ≥ 0.5: 1 1 0 1 0 1 1 0 → correct at 0, 2, 3, 4, 5; TP {0,3,5}, FP {1,6}, FN {7}
    assert.equal(m.sampleSize, 8);
    assert.equal(m.baseRate, 0.5);
    assert.equal(m.accuracy, 5 / 8);
    assert.equal(m.precision, 3 / 5);
    assert.equal(m.recall, 3 / 4);
    close(m.f1, 2 / 3, 1e-15, 'f1'); // 2·0.6·0.75 / 1.35
    // Brier: .01 + .64 + .09 + .16 + .01 + 0 + .25 + .9025 = 2.0625
    close(m.brier, 2.0625 / 8, 1e-15, 'brier');
    // Log loss: p = 1 with y = 1 is clipped to 1 − 1e-15 and contributes ≈ 1e-15.
    const ll = -(Math.log(0.9) + Math.log(0.2) + Math.log(0.7) + Math.log(0.6) + Math.log(0.9) + Math.log(0.5) + Math.log(0.05)) / 8;
    close(m.logLoss, ll, 1e-14, 'logLoss');
    assert.ok(Math.abs(ll - 0.7970673707) < 1e-9, String(ll)); // 6.37654 / 8

    // Bins of width 0.1: 0.05→0, 0.1→1 (lower edge inclusive), 0.3→3, 0.5→5, 0.6→6, 0.8→8, 0.9 and 1.0→9 (1 goes in the last bin).
    const expected: Record<number, [number, number, number]> = {
      0: [1, 0.05, 1],
      1: [1, 0.1, 0],
      3: [1, 0.3, 0],
      5: [1, 0.5, 0],
      6: [1, 0.6, 1],
      8: [1, 0.8, 0],
      9: [2, 0.95, 1],
    };
    assert.equal(m.calibration.length, 10);
    m.calibration.forEach((bin, b) => {
      close(bin.lower, b / 10, 1e-15, `lower ${b}`);
      close(bin.upper, (b + 1) / 10, 1e-15, `upper ${b}`);
      const e = expected[b];
      if (!e) {
        assert.deepEqual([bin.count, bin.meanPredicted, bin.observedRate], [0, null, null], `bin ${b}`);
      } else {
        assert.equal(bin.count, e[0], `count ${b}`);
        close(bin.meanPredicted, e[1], 1e-15, `meanPredicted ${b}`);
        assert.equal(bin.observedRate, e[2], `observedRate ${b}`);
      }
    });
    // ECE = (1/8)(.95 + .1 + .3 + .5 + .4 + .8) + (2/8)(.05) = 0.39375
    close(m.ece, 0.39375, 1e-15, 'ece');
    close(expectedCalibrationError(m.calibration, 8), 0.39375, 1e-15, 'ece helper');
  });

  test('the threshold moves the predicted class; empty classes give null precision / recall / f1', () => {
    const m = binaryMetrics(p, y, 0.85); // predicted 1 only at 0.9 and 1.0
    assert.equal(m.accuracy, 6 / 8);
    assert.equal(m.precision, 1);
    assert.equal(m.recall, 0.5);
    close(m.f1, 2 / 3, 1e-15, 'f1');
    assert.equal(m.brier, binaryMetrics(p, y).brier, 'probabilistic scores do not depend on the threshold');

    const noPositivePredictions = binaryMetrics([0.1, 0.2], [1, 0]);
    assert.equal(noPositivePredictions.precision, null);
    assert.equal(noPositivePredictions.recall, 0);
    assert.equal(noPositivePredictions.f1, null);
    const noPositiveLabels = binaryMetrics([0.7, 0.2], [0, 0]);
    assert.equal(noPositiveLabels.recall, null);
    assert.equal(noPositiveLabels.precision, 0);
    assert.equal(noPositiveLabels.f1, null);
    // Confidently wrong: log loss is large but finite thanks to clipping at 1e-15.
    close(binaryMetrics([0], [1]).logLoss, -Math.log(1e-15), 1e-9, 'clipped log loss');
  });

  test('bins: p = 1 lands in the last bin; the bin count is configurable', () => {
    const bins = calibrationBins([1, 0.999, 0, 0.5, 0.25], [1, 1, 0, 0, 1], 4);
    assert.deepEqual(
      bins.map((b) => b.count),
      [1, 1, 1, 2],
    );
    assert.deepEqual(
      bins.map((b) => [b.lower, b.upper]),
      [
        [0, 0.25],
        [0.25, 0.5],
        [0.5, 0.75],
        [0.75, 1],
      ],
    );
    close(bins[3]!.meanPredicted, 0.9995, 1e-15, 'last bin mean');
    assert.equal(bins[3]!.observedRate, 1);
    assert.equal(binaryMetrics([1], [1]).calibration[9]!.count, 1);
  });

  test('mismatched or empty inputs throw with the counts', () => {
    assert.throws(() => binaryMetrics([0.5, 0.5, 0.5], [1, 0]), {
      message: 'binaryMetrics: need equal, non-empty inputs (got 3 predictions, 2 labels)',
    });
    assert.throws(() => binaryMetrics([], []), { message: 'binaryMetrics: need equal, non-empty inputs (got 0 predictions, 0 labels)' });
  });
});

/** Probabilities p with logit ~ N(0, 1.5²) and labels y ~ Bernoulli(σ(a·logit(p) + b)). */
function plattData(n: number, a: number, b: number, seed: number) {
  const rng = mulberry32(seed);
  const p = new Float64Array(n);
  const y = new Uint8Array(n);
  const l = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    l[i] = 1.5 * gaussian(rng);
    p[i] = sigmoid(l[i]!);
    y[i] = rng() < sigmoid(a * l[i]! + b) ? 1 : 0;
  }
  return { p, y, l };
}

/** Standard errors of (a, b) from the inverse Fisher information at the true parameters. */
function plattStandardErrors(l: Float64Array, a: number, b: number): [number, number] {
  let iaa = 0,
    iab = 0,
    ibb = 0;
  for (const li of l) {
    const q = sigmoid(a * li + b);
    const w = q * (1 - q);
    iaa += w * li * li;
    iab += w * li;
    ibb += w;
  }
  const det = iaa * ibb - iab * iab;
  return [Math.sqrt(ibb / det), Math.sqrt(iaa / det)];
}

/** Gradient of the log loss of sigmoid(a·logit(p) + b) w.r.t. (a, b): zero at the MLE. */
function plattGradient(l: Float64Array, y: Uint8Array, a: number, b: number): [number, number] {
  let ga = 0,
    gb = 0;
  l.forEach((li, i) => {
    const r = sigmoid(a * li + b) - y[i]!;
    ga += r * li;
    gb += r;
  });
  return [ga, gb];
}

describe('Platt calibration', () => {
  const N = 50_000;

  test('already-calibrated probabilities give a ≈ 1, b ≈ 0 (within 4 standard errors) at the exact MLE', () => {
    const { p, y, l } = plattData(N, 1, 0, 11);
    const fit = fitPlatt(p, y);
    assert.equal(fit.method, 'platt');
    const [seA, seB] = plattStandardErrors(l, 1, 0); // ≈ 0.013, 0.010
    assert.ok(Math.abs(fit.a - 1) < 4 * seA, `a ${fit.a} (se ${seA})`);
    assert.ok(Math.abs(fit.b) < 4 * seB, `b ${fit.b} (se ${seB})`);
    for (const g of plattGradient(l, y, fit.a, fit.b)) assert.ok(Math.abs(g) < 1e-6, `gradient ${g}`);
  });

  test('recovers a known distortion: y ~ Bernoulli(σ(2·logit(p) + 0.3)) → (2, 0.3)', () => {
    const { p, y, l } = plattData(N, 2, 0.3, 12);
    const fit = fitPlatt(p, y);
    const [seA, seB] = plattStandardErrors(l, 2, 0.3);
    assert.ok(seA < 0.05 && seB < 0.05, `se ${seA}, ${seB}`);
    assert.ok(Math.abs(fit.a - 2) < 4 * seA, `a ${fit.a} (se ${seA})`);
    assert.ok(Math.abs(fit.b - 0.3) < 4 * seB, `b ${fit.b} (se ${seB})`);
    for (const g of plattGradient(l, y, fit.a, fit.b)) assert.ok(Math.abs(g) < 1e-6, `gradient ${g}`);
    // Applying it undoes the distortion: calibrated probabilities match the generating ones closely.
    for (const pi of [0.1, 0.4, 0.5, 0.8]) {
      const truth = sigmoid(2 * Math.log(pi / (1 - pi)) + 0.3);
      assert.ok(Math.abs(applyPlatt(fit, pi) - truth) < 0.02, `${pi}: ${applyPlatt(fit, pi)} vs ${truth}`);
    }
  });

  test('applyPlatt: identity at (1, 0), σ(a·logit(p) + b) otherwise, clipped at 1e-12 at the ends', () => {
    const identity = { method: 'platt', a: 1, b: 0 } as const;
    for (const pi of [1e-6, 0.001, 0.2, 0.5, 0.77, 0.999]) close(applyPlatt(identity, pi), pi, 1e-12, `identity at ${pi}`);
    close(applyPlatt(identity, 0), 1e-12, 1e-20, 'p = 0');
    close(applyPlatt(identity, 1), 1 - 1e-12, 1e-15, 'p = 1');
    close(applyPlatt({ method: 'platt', a: 2, b: 0.3 }, 0.5), sigmoid(0.3), 1e-15, 'p = 0.5');
    // logit(0.8) = ln 4
    close(applyPlatt({ method: 'platt', a: 0.5, b: -1 }, 0.8), sigmoid(0.5 * Math.log(4) - 1), 1e-15, 'p = 0.8');
  });
});

describe('split-conformal intervals', () => {
  // center 0.25, vol ∈ {0.5, 0.25, 0.125}, h = 4 (√h = 2): r = 0.25 ± s·vol·2 makes the score exactly s.
  function handExample(scores: number[]) {
    const vols = [0.5, 0.25, 0.125];
    const vol = scores.map((_, i) => vols[i % 3]!);
    const forwardReturn = scores.map((s, i) => 0.25 + (i % 2 ? -1 : 1) * s * vol[i]! * 2);
    return { forwardReturn, vol };
  }

  test('score is |r − μ| / (σ · √h), with σ (split-conformal: vol_20d) floored at 1e-6', () => {
    assert.equal(intervalScore(0.25 + 3, 0.5, 0.25, 4), 3);
    assert.equal(intervalScore(0.25 - 1.5, 0.25, 0.25, 4), 3);
    const sigma = (vol: number) => intervalScale(VOL20_SCALE, rowsOf([0], [vol]).x);
    close(intervalScore(0.01, sigma(0), 0, 1), 0.01 / 1e-6, 1e-6, 'vol floor');
    close(intervalScore(0.01, sigma(-1), 0, 4), 0.01 / 2e-6, 1e-6, 'negative vol floor');
  });

  test('the quantile is the ⌈(n+1)·L⌉-th smallest score (n = 10, scores 1…10 shuffled)', () => {
    const { forwardReturn, vol } = handExample([7, 2, 10, 4, 1, 9, 5, 3, 8, 6]);
    const fit = fitConformal(0.25, VOL20_SCALE, rowsOf(forwardReturn, vol), 4, [0.25, 0.5, 0.8, 0.9, 0.95, 0.99]);
    assert.equal(fit.method, 'volatility-normalised-conformal');
    assert.equal(fit.center, 0.25);
    // ⌈11·0.25⌉ = 3, ⌈5.5⌉ = 6, ⌈8.8⌉ = 9, ⌈9.9⌉ = 10; ⌈10.45⌉ = ⌈10.89⌉ = 11 > n is clamped to the largest score.
    assert.deepEqual(fit.quantiles, { '0.25': 3, '0.5': 6, '0.8': 9, '0.9': 10, '0.95': 10, '0.99': 10 });
    // On the calibration set itself, level 0.8 covers the 9 scores ≤ 9.
    assert.equal(coverage(fit, 0.8, rowsOf(forwardReturn, vol), 4), 0.9);
    assert.equal(coverage(fit, 0.25, rowsOf(forwardReturn, vol), 4), 0.3);
    assert.throws(() => coverage(fit, 0.7, rowsOf(forwardReturn, vol), 4), { message: 'no conformal quantile for level 0.7' });
  });

  test('an integer (n+1)·L picks exactly that rank (n = 9, scores 1…9); default levels are 0.8/0.9/0.95/0.99', () => {
    const { forwardReturn, vol } = handExample([9, 1, 8, 2, 7, 3, 6, 4, 5]);
    const fit = fitConformal(0.25, VOL20_SCALE, rowsOf(forwardReturn, vol), 4);
    assert.deepEqual([...INTERVAL_LEVELS], [0.8, 0.9, 0.95, 0.99]);
    // ⌈10·0.8⌉ = 8, ⌈9⌉ = 9, ⌈9.5⌉ = 10 → clamped, ⌈9.9⌉ = 10 → clamped
    assert.deepEqual(fit.quantiles, { '0.8': 8, '0.9': 9, '0.95': 9, '0.99': 9 });
    // Scores sort numerically, not as strings (10 > 9).
    const two = handExample([10, 9]);
    assert.equal(fitConformal(0.25, VOL20_SCALE, rowsOf(two.forwardReturn, two.vol), 4, [0.5]).quantiles['0.5'], 10);
  });

  test('coverage on exchangeable data is ≥ the level and close to it (mean over 300 calibration draws)', () => {
    // Returns r = μ + σ·√h·ε with heteroscedastic σ and fat-tailed ε (Student-t, 4 df): the scores are i.i.d.,
    // so split conformal covers a fresh point with probability ⌈(n+1)L⌉/(n+1). With n = 199 that is exactly L
    // for every default level. The Monte-Carlo sd of the mean over 300 draws × 200 test points is ≤ 0.0025,
    // so a tolerance of 0.01 is 4 sd; coverage off by one rank (±0.005) or a wrong score scale fails.
    const rng = mulberry32(99);
    const h = 5;
    const mu = 0.0004;
    const draw = (n: number) => {
      const forwardReturn = new Float64Array(n);
      const vol = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        vol[i] = 0.005 + 0.03 * rng();
        let chi2 = 0;
        for (let k = 0; k < 4; k++) chi2 += gaussian(rng) ** 2;
        const eps = (gaussian(rng) / Math.sqrt(chi2 / 4)) * Math.sqrt(0.5);
        forwardReturn[i] = mu + vol[i]! * Math.sqrt(h) * eps;
      }
      return { forwardReturn, vol };
    };
    const trials = 300;
    const sums: Record<string, number> = {};
    const calm: number[] = [];
    const wild: number[] = [];
    for (let t = 0; t < trials; t++) {
      const cal = draw(199);
      const fresh = draw(200);
      const fit = fitConformal(mu, VOL20_SCALE, rowsOf(cal.forwardReturn, cal.vol), h);
      for (const level of INTERVAL_LEVELS)
        sums[level] = (sums[level] ?? 0) + coverage(fit, level, rowsOf(fresh.forwardReturn, fresh.vol), h);
      // The interval scales with σ, so coverage holds in calm and wild regimes alike (level 0.9).
      const q = fit.quantiles['0.9']!;
      fresh.vol.forEach((v, i) => (v < 0.02 ? calm : wild).push(intervalScore(fresh.forwardReturn[i]!, v, mu, h) <= q ? 1 : 0));
    }
    for (const level of INTERVAL_LEVELS) {
      const mean = sums[level]! / trials;
      assert.ok(mean >= level - 0.01 && mean <= level + 0.01, `level ${level}: mean coverage ${mean}`);
    }
    const rate = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
    assert.ok(Math.abs(rate(calm) - 0.9) < 0.01 && Math.abs(rate(wild) - 0.9) < 0.01, `calm ${rate(calm)}, wild ${rate(wild)}`);
  });

  test('one large calibration set: coverage of a large fresh sample is within 3 binomial sd of each level', () => {
    const rng = mulberry32(7);
    const make = (n: number) => {
      const forwardReturn = new Float64Array(n);
      const vol = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        vol[i] = 0.01 + 0.02 * rng();
        forwardReturn[i] = 0.001 + vol[i]! * gaussian(rng);
      }
      return { forwardReturn, vol };
    };
    const cal = make(4999); // (n+1)·L is an integer for every default level
    const fresh = make(100_000);
    const fit = fitConformal(0.001, VOL20_SCALE, rowsOf(cal.forwardReturn, cal.vol), 1);
    for (const level of INTERVAL_LEVELS) {
      const c = coverage(fit, level, rowsOf(fresh.forwardReturn, fresh.vol), 1);
      // The conditional coverage given the calibration set is Beta(k, n+1−k): sd ≈ √(L(1−L)/n).
      const sd = Math.sqrt((level * (1 - level)) / 5000);
      assert.ok(Math.abs(c - level) < 3 * sd + 0.002, `level ${level}: coverage ${c} (sd ${sd})`);
      // Gaussian data: the quantile should be close to the normal two-sided quantile.
      const z = { 0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758 }[level];
      assert.ok(Math.abs(fit.quantiles[String(level)]! - z) < 0.1, `q ${fit.quantiles[String(level)]} vs z ${z}`);
    }
  });
});

/** Rows whose only volatility is vol_20d = `vol` (what VOL20_SCALE reads), for the hand-made examples above. */
function rowsOf(forwardReturn: ArrayLike<number>, vol: ArrayLike<number>): IntervalRows {
  const F = FEATURE_NAMES.length;
  const x = new Float64Array(forwardReturn.length * F);
  for (let i = 0; i < forwardReturn.length; i++) x[i * F + FEATURE_NAMES.indexOf('vol_20d')] = vol[i]!;
  return { x, featureCount: F, forwardReturn, time: new Float64Array(forwardReturn.length) };
}
