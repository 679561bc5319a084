import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FEATURE_NAMES } from '../../../src/domain/features.js';
import {
  FEATURE_WORDING,
  describeFactor,
  effectPhrase,
  percentileOf,
  rankPhrase,
  summarize,
} from '../../../src/modules/explanations/descriptions.js';

const Q = { '0.01': -0.3, '0.05': -0.14, '0.1': -0.09, '0.25': -0.03, '0.5': 0.01, '0.75': 0.05, '0.9': 0.1, '0.95': 0.14, '0.99': 0.25 };

describe('percentileOf', () => {
  test('stored levels map to themselves, values between them interpolate', () => {
    assert.equal(percentileOf(0.01, Q), 0.5);
    assert.equal(percentileOf(0.14, Q), 0.95);
    assert.ok(Math.abs(percentileOf(0.03, Q) - 0.625) < 1e-12);
  });
  test('beyond the outermost levels: halfway to 0 or 1', () => {
    assert.equal(percentileOf(5, Q), 0.995);
    assert.equal(percentileOf(-5, Q), 0.005);
  });
  test('a value many levels share (range position 1 = the 20-day high) sits in the middle of them', () => {
    const range = { '0.01': 0, '0.05': 0, '0.1': 0, '0.25': 0.23, '0.5': 0.61, '0.75': 0.9, '0.9': 1, '0.95': 1, '0.99': 1 };
    assert.equal(percentileOf(1, range), (0.9 + 0.99) / 2);
    assert.equal(percentileOf(0, range), (0.01 + 0.1) / 2);
  });
  test('no quantiles or a non-finite value: the middle, never NaN', () => {
    assert.equal(percentileOf(1, {}), 0.5);
    assert.equal(percentileOf(Number.NaN, Q), 0.5);
  });
});

describe('wording', () => {
  test('every feature the gateway computes has its own wording', () => {
    assert.deepEqual(
      FEATURE_NAMES.filter((name) => !FEATURE_WORDING[name]),
      [],
    );
  });

  test('a factor reads as value, rank against the training data, and effect', () => {
    assert.equal(
      describeFactor('ret_20d', Math.log(1.061), Q, 0.012),
      '20-day momentum +6.1%, higher than usual (top 25% of the training data); raises the probability 1.2 pts',
    );
    assert.equal(
      describeFactor('ret_20d', Math.log(1.2), Q, 0.0123),
      '20-day momentum +20.0%, in the top 5% of the training data; raises the probability 1.2 pts',
    );
    assert.equal(
      describeFactor('ma_dist_50', -0.2, Q, -0.003),
      'price 20.0% below its 50-day average, in the bottom 5% of the training data; lowers the probability 0.30 pts',
    );
    assert.equal(
      describeFactor('rsi_14', 0.75, { '0.5': 0.5, '0.99': 0.78 }, 0.0001),
      'RSI(14) 75 (overbought), in the top 10% of the training data; barely moves the probability',
    );
    assert.equal(
      describeFactor('range_pos_20', 1, { '0.5': 0.6, '0.9': 1, '0.99': 1 }, 0.001),
      'close at its 20-day high, in the top 10% of the training data; raises the probability 0.10 pts',
    );
    assert.equal(
      describeFactor('dollar_volume_z20', -1.24, Q, 0),
      'dollar volume −1.2σ against its 20-day norm, lower than 99% of the training data; barely moves the probability',
    );
  });

  test('a feature this gateway does not know still gets a truthful generic description (with only a median stored, above it is all we can say)', () => {
    assert.equal(
      describeFactor('alpha', 0.123456, { '0.5': 0 }, -0.02),
      'alpha 0.123, within its usual range; lowers the probability 2.0 pts',
    );
  });

  test('rank phrases cover the whole range, symmetric', () => {
    assert.equal(rankPhrase(0.5), 'within its usual range');
    assert.equal(rankPhrase(0.995), 'higher than 99% of the training data');
    assert.equal(rankPhrase(0.005), 'lower than 99% of the training data');
    assert.equal(rankPhrase(0.92), 'in the top 10% of the training data');
    assert.equal(rankPhrase(0.08), 'in the bottom 10% of the training data');
    assert.equal(effectPhrase(-0.0004), 'barely moves the probability');
  });
});

describe('summarize', () => {
  const factors = [
    { feature: 'ret_20d', contribution: 0.012 },
    { feature: 'ret_5d', contribution: -0.008 },
    { feature: 'rsi_14', contribution: 0.005 },
    { feature: 'vol_20d', contribution: 0.001 },
    { feature: 'hl_range', contribution: -0.0001 },
  ];
  test('names the biggest pushes each way with their size, in one sentence', () => {
    assert.equal(
      summarize(0.542, 0.521, factors),
      '54.2% against 52.1% for a typical input: raised most by 20-day momentum (+1.2 pts) and RSI(14) (+0.50 pts), lowered by 5-day return (−0.80 pts).',
    );
  });
  test('only one direction, or nothing worth naming', () => {
    assert.equal(
      summarize(0.5, 0.52, [{ feature: 'ret_1d', contribution: -0.02 }]),
      '50.0% against 52.0% for a typical input: lowered most by 1-day return (−2.0 pts).',
    );
    assert.equal(
      summarize(0.52, 0.52, [{ feature: 'ret_1d', contribution: 0.0001 }]),
      '52.0% against 52.0% for a typical input: no input moves it by more than 0.05 pts.',
    );
  });
});
