import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { mulberry32 } from '../../../src/shared/random.js';
import { logit, sigmoid } from '../../../src/domain/calibration.js';
import {
  EXACT_MAX_COALITIONS,
  PERMUTATIONS,
  choosePlan,
  exactPlan,
  permutationPlan,
  writeCoalitionRows,
  type ShapleyPlan,
} from '../../../src/modules/explanations/shapley.js';

/** Runs a plan against a value function of coalition masks, the way the service does with model scores. */
function shapley(plan: ShapleyPlan, v: (mask: number) => number): Float64Array {
  const full = 2 ** plan.features - 1;
  return plan.attribute(Array.from(plan.coalitions, v), v(0), v(full));
}

/** v(S) for a model f on hybrid inputs: features in S from x, the rest from b. */
const hybrid = (f: (z: number[]) => number, x: number[], b: number[]) => (mask: number) =>
  f(x.map((xi, j) => ((mask >>> j) & 1 ? xi : b[j]!)));

const sum = (values: ArrayLike<number>) => Array.from(values).reduce((a, b) => a + b, 0);
const plans = (d: number): ShapleyPlan[] => [exactPlan(d), permutationPlan(d, 8, 42)];

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, message = ''): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${message} [${i}]: ${actual[i]} vs ${expected[i]} (±${tolerance})`);
  }
}

describe('Shapley values where they are known analytically', () => {
  const w = [0.8, -1.5, 0.3, 2.0, -0.2];
  const x = [1.2, 0.4, -2.0, 0.1, 3.0];
  const b = [0.2, 0.9, 0.5, -0.4, 3.0]; // the last feature equals its baseline
  const linear = (z: number[]) => 0.1 + z.reduce((acc, zi, j) => acc + w[j]! * zi, 0);

  for (const plan of plans(5)) {
    test(`${plan.method}: a linear model gets contribution_i = w_i (x_i − b_i), exactly`, () => {
      const phi = shapley(plan, hybrid(linear, x, b));
      assertClose(
        phi,
        w.map((wi, i) => wi * (x[i]! - b[i]!)),
        1e-12,
      );
      assert.equal(phi[4], 0, 'a feature at its baseline contributes nothing');
    });

    test(`${plan.method}: a logistic model, attributed before the link (logit space), is the linear case again`, () => {
      const probability = (z: number[]) => sigmoid(linear(z));
      const phi = shapley(plan, (mask) => logit(hybrid(probability, x, b)(mask)));
      assertClose(
        phi,
        w.map((wi, i) => wi * (x[i]! - b[i]!)),
        1e-9,
      );
    });

    test(`${plan.method}: a pure pairwise interaction x0·x1 is split in half (antithetic pairs make sampling exact here)`, () => {
      const phi = shapley(
        plan,
        hybrid((z) => z[0]! * z[1]!, [3, 4, 1, 1, 1], [0, 0, 0, 0, 0]),
      );
      assertClose(phi, [6, 6, 0, 0, 0], 1e-12);
    });
  }

  test('shapley-exact: a three-way interaction x0·x1·x2 gets a third each', () => {
    const phi = shapley(
      exactPlan(4),
      hybrid((z) => z[0]! * z[1]! * z[2]!, [2, 3, 5, 7], [0, 0, 0, 0]),
    );
    assertClose(phi, [10, 10, 10, 0], 1e-12);
  });

  test('shapley-exact equals the definition: the average marginal contribution over all d! orders', () => {
    const d = 5;
    const random = mulberry32(7);
    const table = Float64Array.from({ length: 2 ** d }, () => random());
    const v = (mask: number) => table[mask]!;
    const expected = new Float64Array(d);
    let count = 0;
    const permute = (order: number[], rest: number[]) => {
      if (rest.length === 0) {
        let mask = 0;
        for (const i of order) {
          expected[i] = expected[i]! + v(mask | (1 << i)) - v(mask);
          mask |= 1 << i;
        }
        count++;
        return;
      }
      rest.forEach((i, k) => permute([...order, i], [...rest.slice(0, k), ...rest.slice(k + 1)]));
    };
    permute([], [0, 1, 2, 3, 4]);
    assert.equal(count, 120);
    assertClose(
      shapley(exactPlan(d), v),
      Array.from(expected, (e) => e / count),
      1e-12,
    );
  });
});

describe('efficiency: contributions always sum to v(N) − v(∅)', () => {
  test('for arbitrary value functions, both plans, any feature count and seed (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 6 }),
        (d, seed, pairs) => {
          const random = mulberry32(seed);
          const table = Float64Array.from({ length: 2 ** d }, () => random() * 2 - 1);
          for (const plan of [exactPlan(d), permutationPlan(d, 2 * pairs, seed)]) {
            const phi = shapley(plan, (mask) => table[mask]!);
            assert.ok(Math.abs(sum(phi) - (table[2 ** d - 1]! - table[0]!)) < 1e-12, `${plan.method} d=${d}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('for the 13-feature plan the service uses, on a model with strong interactions', () => {
    const plan = choosePlan(13);
    const x = Array.from({ length: 13 }, (_, i) => Math.sin(i + 1));
    const b = Array.from({ length: 13 }, () => 0);
    const f = (z: number[]) =>
      sigmoid(z[0]! * z[1]! * 3 - z[2]! + Math.max(0, z[3]! + z[4]!) * z[5]! + z.slice(6).reduce((a, c) => a + c * c, 0));
    const v = hybrid(f, x, b);
    assert.ok(Math.abs(sum(shapley(plan, v)) - (v(2 ** 13 - 1) - v(0))) < 1e-12);
  });
});

describe('plans', () => {
  test(`exact up to ${EXACT_MAX_COALITIONS} coalitions per input (10 features), permutation sampling beyond`, () => {
    assert.equal(choosePlan(10).method, 'shapley-exact');
    assert.equal(choosePlan(10).coalitions.length, 1022);
    const plan = choosePlan(13);
    assert.equal(plan.method, 'shapley-permutation');
    // Distinct proper prefixes of 32 orders: at most 32 · 12, fewer where orders share prefixes.
    assert.ok(plan.coalitions.length <= PERMUTATIONS * 12 && plan.coalitions.length > 13, String(plan.coalitions.length));
    assert.equal(new Set(plan.coalitions).size, plan.coalitions.length, 'no coalition is evaluated twice');
    assert.ok(!plan.coalitions.includes(0) && !plan.coalitions.includes(2 ** 13 - 1), '∅ and N are never rows');
  });

  test('permutation plans are a pure function of (features, orders, seed): the same input gets the same explanation', () => {
    assert.deepEqual(permutationPlan(13, 32, 1).coalitions, permutationPlan(13, 32, 1).coalitions);
    assert.notDeepEqual(permutationPlan(13, 32, 1).coalitions, permutationPlan(13, 32, 2).coalitions);
  });

  test('writeCoalitionRows: column j from the input where the mask has bit j, else from the baseline, at the row offset', () => {
    const plan = exactPlan(2); // coalitions 1 (feature 0 only), 2 (feature 1 only)
    const out = new Float32Array(4 * 2).fill(-9);
    writeCoalitionRows(plan, [1.5, 2.5], [10, 20], out, 1);
    assert.deepEqual(Array.from(out), [-9, -9, 1.5, 20, 10, 2.5, -9, -9]);
  });

  test('misuse fails with the contract restated', () => {
    assert.throws(() => exactPlan(0), /need 1-30 features, got 0/);
    assert.throws(() => exactPlan(21), /use permutation sampling above 20/);
    assert.throws(() => permutationPlan(5, 3, 1), /orders must be an even integer ≥ 2 \(antithetic pairs\), got 3/);
    assert.throws(() => exactPlan(3).attribute([1, 2], 0, 1), /one value per coalition: 6, got 2/);
  });
});
