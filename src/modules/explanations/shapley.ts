import { mulberry32 } from '../../shared/random.js';

/**
 * Interventional Shapley values of a black-box model against one baseline input.
 *
 * For an input x, a baseline b and a coalition S of features, v(S) is the model's (served, calibrated)
 * output on the hybrid input that takes the features in S from x and the others from b; so v(∅) is the
 * prediction at the baseline and v(N) the prediction itself. Feature i's Shapley value is its marginal
 * contribution v(S ∪ {i}) − v(S) averaged over every order in which the features could be added. The
 * values always add up: Σᵢ φᵢ = v(N) − v(∅) (efficiency), which is what lets an explanation say "these
 * contributions took the probability from the baseline to the prediction".
 *
 * A {@link ShapleyPlan} separates the two halves so that a caller can batch the expensive middle: it
 * lists the coalitions to evaluate (as bitmasks: bit j set = feature j from x), the caller scores all of
 * them, for every input of a request, in one model run, and `attribute` turns the scores into values.
 *
 * Two plans, both exactly efficient:
 * - exact: every coalition, 2^d − 2 evaluations per input (∅ and N are known). Deterministic and free of
 *   sampling error, but the cost doubles with each feature.
 * - permutation sampling: m orders of the features, drawn with a fixed seed so the same input always
 *   gets the same explanation, in antithetic pairs (each order and its reverse). Every order's marginal
 *   contributions telescope to exactly v(N) − v(∅), so their average does too: sampling blurs how the
 *   total is split between features, never the total. A pair of reversed orders splits any pairwise
 *   interaction exactly in half, as Shapley does, so for a model whose interactions are (nearly) at
 *   most pairwise, such as a logistic regression behind a smooth link, the estimate is (nearly) exact.
 *   Cost: at most m·(d − 1) distinct coalitions per input, fewer where orders share prefixes.
 *
 * Why the service picks permutation sampling for our 13-feature models (see {@link choosePlan}): exact
 * needs 2^13 − 2 rows per symbol, one run per request that blocks the event loop (onnxruntime-node runs
 * on the calling thread) for as long as it takes; 32 orders need at most 32·12 rows per symbol (fewer
 * after shared prefixes). Against exact they differ by ~1e-6 on typical inputs, and by up to 4.9e-4 (1d)
 * on the most extreme held-out inputs of the real data (OXY 2020-03-09, −40% that day): see
 * {@link SHAPLEY_PERMUTATION_BOUND}. The figures behind the choice: docs/decisions/hot-path-measurements.md.
 */
export interface ShapleyPlan {
  readonly method: 'shapley-exact' | 'shapley-permutation';
  /** Number of features d (at most 30: coalitions are 32-bit masks). */
  readonly features: number;
  /** Distinct coalitions to evaluate per input, excluding ∅ (0) and N (all bits): the caller's rows. */
  readonly coalitions: Uint32Array;
  /**
   * Shapley values from `values[k]` = v(coalitions[k]) and the two ends; the result sums to
   * `full − empty` up to floating-point rounding.
   */
  attribute(values: ArrayLike<number>, empty: number, full: number): Float64Array;
}

/** Up to this many coalitions per input, exact enumeration is affordable: d ≤ 10. */
export const EXACT_MAX_COALITIONS = 1_022;
/** Beyond this, even building the plan (2^d masks) is unreasonable. */
const EXACT_LIMIT = 20;
/** Orders sampled when exact is too expensive: 16 antithetic pairs. */
export const PERMUTATIONS = 32;
/**
 * How far the permutation split may be from exact Shapley, per feature, on the committed models: the
 * sampling error grows with the input's distance from the baseline, and on the 200 held-out inputs of
 * the real data (2018-2021) farthest from it the largest measured difference is 4.9e-4 (1d) and 4.5e-5
 * (5d); test/e2e/shapley-bound.test.ts checks them against this bound, the unit test of the committed
 * models checks typical inputs to 1e-5 (docs/decisions/adaptive-intervals.md).
 */
export const SHAPLEY_PERMUTATION_BOUND = 1e-3;
/** Fixed, so an explanation is a pure function of the model version and the input. */
export const PERMUTATION_SEED = 0x5eed;

/** Exact when it costs at most {@link EXACT_MAX_COALITIONS} rows per input, else permutation sampling. */
export function choosePlan(features: number): ShapleyPlan {
  return 2 ** features - 2 <= EXACT_MAX_COALITIONS ? exactPlan(features) : permutationPlan(features, PERMUTATIONS, PERMUTATION_SEED);
}

/** Every coalition: coalitions[k] = k + 1, for k < 2^d − 2. */
export function exactPlan(features: number): ShapleyPlan {
  checkFeatureCount(features);
  if (features > EXACT_LIMIT)
    throw new Error(
      `exact Shapley over ${features} features needs ${2 ** features - 2} evaluations per input; use permutation sampling above ${EXACT_LIMIT}`,
    );
  const d = features;
  const full = 2 ** d - 1;
  const coalitions = Uint32Array.from({ length: Math.max(0, full - 1) }, (_, k) => k + 1);
  // weight[s] = s! (d − s − 1)! / d!: the share of orders in which a given coalition of size s is
  // exactly the set of features added before feature i.
  const weight = Float64Array.from({ length: d }, (_, s) => 1 / (d * binomial(d - 1, s)));
  const size = popcounts(d);
  return {
    method: 'shapley-exact',
    features: d,
    coalitions,
    attribute(values, empty, fullValue) {
      checkValues(values, coalitions.length);
      const v = (mask: number) => (mask === 0 ? empty : mask === full ? fullValue : values[mask - 1]!);
      const phi = new Float64Array(d);
      for (let mask = 0; mask < full; mask++) {
        const w = weight[size[mask]!]!;
        const here = v(mask);
        for (let i = 0; i < d; i++) {
          const bit = 1 << i;
          if ((mask & bit) === 0) phi[i] = phi[i]! + w * (v(mask | bit) - here);
        }
      }
      return phi;
    },
  };
}

/**
 * `orders` feature orders (even: each drawn order is followed by its reverse) from a seeded Fisher-Yates
 * shuffle. Coalitions are the orders' distinct proper prefixes.
 */
export function permutationPlan(features: number, orders: number, seed: number): ShapleyPlan {
  checkFeatureCount(features);
  if (!(Number.isInteger(orders) && orders >= 2 && orders % 2 === 0))
    throw new Error(`orders must be an even integer ≥ 2 (antithetic pairs), got ${orders}`);
  const d = features;
  const full = 2 ** d - 1;
  const random = mulberry32(seed);
  const sequences: number[][] = [];
  for (let pair = 0; pair < orders / 2; pair++) {
    const order = Array.from({ length: d }, (_, i) => i);
    for (let i = d - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    sequences.push(order, [...order].reverse());
  }
  const index = new Map<number, number>();
  // For each order, the position in `coalitions` of each proper non-empty prefix (−1 for ∅ and N).
  const prefixes = sequences.map((order) => {
    const positions = new Int32Array(d + 1).fill(-1);
    let mask = 0;
    order.forEach((feature, k) => {
      mask |= 1 << feature;
      if (mask === full) return;
      let position = index.get(mask);
      if (position === undefined) index.set(mask, (position = index.size));
      positions[k + 1] = position;
    });
    return positions;
  });
  const coalitions = Uint32Array.from(index.keys());
  return {
    method: 'shapley-permutation',
    features: d,
    coalitions,
    attribute(values, empty, fullValue) {
      checkValues(values, coalitions.length);
      const phi = new Float64Array(d);
      sequences.forEach((order, o) => {
        const positions = prefixes[o]!;
        let previous = empty;
        order.forEach((feature, k) => {
          const position = positions[k + 1]!;
          const next = k === d - 1 ? fullValue : values[position]!;
          phi[feature] = phi[feature]! + next - previous;
          previous = next;
        });
      });
      for (let i = 0; i < d; i++) phi[i] = phi[i]! / orders;
      return phi;
    },
  };
}

/**
 * Writes the hybrid input of each coalition, row after row, into `out` from `offset` (in rows): column j
 * from `input` where the coalition has bit j, from `baseline` elsewhere. Values are rounded to float32 as
 * the model sees them, exactly as the served input was.
 */
export function writeCoalitionRows(
  plan: ShapleyPlan,
  input: ArrayLike<number>,
  baseline: ArrayLike<number>,
  out: Float32Array,
  offset: number,
): void {
  const d = plan.features;
  const x = Float32Array.from({ length: d }, (_, j) => input[j]!);
  const b = Float32Array.from({ length: d }, (_, j) => baseline[j]!);
  const fromInput = selections(plan);
  // Plain loops over typed arrays: a request writes tens of thousands of rows.
  for (let row = 0, k = 0, at = offset * d; row < plan.coalitions.length; row++) {
    for (let j = 0; j < d; j++, k++, at++) out[at] = fromInput[k] ? x[j]! : b[j]!;
  }
}

/** Per plan, row-major coalitions × features: 1 where the column comes from the input. Built once. */
const selectionCache = new WeakMap<ShapleyPlan, Uint8Array>();

function selections(plan: ShapleyPlan): Uint8Array {
  let table = selectionCache.get(plan);
  if (!table) {
    const d = plan.features;
    table = new Uint8Array(plan.coalitions.length * d);
    plan.coalitions.forEach((mask, k) => {
      for (let j = 0; j < d; j++) table![k * d + j] = (mask >>> j) & 1;
    });
    selectionCache.set(plan, table);
  }
  return table;
}

function checkFeatureCount(features: number): void {
  if (!(Number.isInteger(features) && features >= 1 && features <= 30))
    throw new Error(`Shapley plans need 1-30 features, got ${features}`);
}

function checkValues(values: ArrayLike<number>, expected: number): void {
  if (values.length !== expected) throw new Error(`attribute() needs one value per coalition: ${expected}, got ${values.length}`);
}

function binomial(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) result = (result * (n - k + i)) / i;
  return result;
}

function popcounts(d: number): Uint8Array {
  const size = new Uint8Array(2 ** d);
  for (let mask = 1; mask < size.length; mask++) size[mask] = size[mask >> 1]! + (mask & 1);
  return size;
}
