import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';
import { manifestSchema } from '../../../src/domain/manifest.js';
import { applyPlatt } from '../../../src/domain/calibration.js';
import { FEATURE_NAMES, FEATURE_WINDOW, computeFeatures } from '../../../src/domain/features.js';
import { findStrategy } from '../../../src/domain/strategies.js';
import { buildSamples, selectPeriod } from '../../../src/training/dataset.js';
import { binaryMetrics } from '../../../src/training/evaluate.js';
import { GBT_DEFAULTS, fitGbt, predictGbt, type GbtModel } from '../../../src/training/gbt.js';
import { fitLogistic, predictLogistic } from '../../../src/training/logistic.js';
import { exportTreeEnsembleToOnnx } from '../../../src/training/onnx-export.js';
import { buildManifest, exportModel } from '../../../src/training/package.js';
import { trainDirectionModel, type GbtTrainingResult, type TrainingPeriods } from '../../../src/training/train.js';
import { mulberry32 } from '../../../src/shared/random.js';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { postQuery } from '../../helpers/graphql.js';
import { modelsFixture, type ModelsFixture } from '../../helpers/models.js';
import { runCliInProcess } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/services.js';
import { readFile } from 'node:fs/promises';

const F = FEATURE_NAMES.length;
const sessions: ort.InferenceSession[] = [];
after(async () => {
  for (const s of sessions) await s.release();
});

async function onnxProbabilities(bytes: Uint8Array, x: Float64Array, rows: Uint32Array, features: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(Buffer.from(bytes));
  sessions.push(session);
  const input = new Float32Array(rows.length * features);
  rows.forEach((r, i) => input.set(x.subarray(r * features, (r + 1) * features), i * features));
  const output = await session.run({ features: new ort.Tensor('float32', input, [rows.length, features]) });
  assert.deepEqual([...output.probability!.dims], [rows.length, 1]);
  return output.probability!.data as Float32Array;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

function depthOf(tree: GbtModel['trees'][number], node = 0): number {
  return tree.feature[node]! < 0 ? 0 : 1 + Math.max(depthOf(tree, tree.left[node]!), depthOf(tree, tree.right[node]!));
}

/**
 * y = 1 when |x0| > 1 (with 10% of labels flipped), x1…x3 noise: an interaction no linear model can
 * express, so trees must beat the logistic regression on it by a wide margin.
 */
function nonlinearData(n: number, seed: number) {
  const rng = mulberry32(seed);
  const features = 4;
  const x = new Float64Array(n * features);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < features; j++) x[i * features + j] = (rng() - 0.5) * 4;
    const truth = Math.abs(x[i * features]!) > 1 ? 1 : 0;
    y[i] = rng() < 0.1 ? 1 - truth : truth;
  }
  const range = (from: number, to: number) => Uint32Array.from({ length: to - from }, (_, i) => from + i);
  return { x, y, features, train: range(0, n / 2), validation: range(n / 2, (3 * n) / 4), test: range((3 * n) / 4, n) };
}

describe('fitGbt', () => {
  const data = nonlinearData(8000, 7);
  const options = { minSamplesLeaf: 50, maxTrees: 120 };
  const model = fitGbt(data.x, data.y, data.train, data.validation, data.features, options);

  test('learns an interaction the logistic regression cannot (held-out accuracy near the 90% ceiling)', () => {
    const yTest = Float64Array.from(data.test, (r) => data.y[r]!);
    const trees = binaryMetrics(predictGbt(model, data.x, data.test, data.features), yTest);
    const logistic = fitLogistic(data.x, data.y, data.train, data.features, { l2: 1e-3 });
    const linear = binaryMetrics(predictLogistic(logistic, data.x, data.test, data.features), yTest);
    assert.ok(trees.accuracy > 0.86, `trees accuracy ${trees.accuracy}`);
    assert.ok(linear.accuracy < 0.6, `logistic accuracy ${linear.accuracy}`);
    assert.ok(trees.logLoss < linear.logLoss - 0.2, `log loss ${trees.logLoss} vs ${linear.logLoss}`);
  });

  test('respects depth and leaf size, and keeps the prefix of trees with the lowest validation log loss', () => {
    assert.ok(model.trees.length > 0);
    const best = model.validationLogLoss.indexOf(Math.min(...model.validationLogLoss));
    assert.equal(model.trees.length, best);
    // Stopped either at maxTrees or `patience` trees after the best.
    const tried = model.validationLogLoss.length - 1;
    assert.ok(tried === options.maxTrees || tried === best + GBT_DEFAULTS.patience, `tried ${tried}, best ${best}`);
    for (const tree of model.trees) {
      assert.ok(depthOf(tree) <= GBT_DEFAULTS.maxDepth);
      // Each leaf holds ≥ minSamplesLeaf training rows.
      const counts = new Map<number, number>();
      for (const r of data.train) {
        let node = 0;
        while (tree.feature[node]! >= 0) {
          node =
            Math.fround(data.x[r * data.features + tree.feature[node]!]!) <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
        }
        counts.set(node, (counts.get(node) ?? 0) + 1);
      }
      for (const [, c] of counts) assert.ok(c >= options.minSamplesLeaf, `a leaf with ${c} rows`);
      for (const t of tree.threshold) assert.equal(t, Math.fround(t), 'thresholds are float32');
      for (const v of tree.value) assert.equal(v, Math.fround(v), 'leaf values are float32');
    }
  });

  test('early stopping on the validation rows: with no signal it keeps few trees', () => {
    const noise = nonlinearData(4000, 8);
    const rng = mulberry32(3);
    for (let i = 0; i < noise.y.length; i++) noise.y[i] = rng() < 0.5 ? 1 : 0;
    const fitted = fitGbt(noise.x, noise.y, noise.train, noise.validation, noise.features, options);
    assert.ok(fitted.trees.length < 15, `${fitted.trees.length} trees kept on pure noise`);
    assert.equal(fitted.validationLogLoss.length - 1, fitted.trees.length + GBT_DEFAULTS.patience);
  });

  test('deterministic: the same data gives the same trees', () => {
    assert.deepEqual(fitGbt(data.x, data.y, data.train, data.validation, data.features, options), model);
  });

  test('exported as TreeEnsembleRegressor + Sigmoid, onnxruntime gives predictGbt within 1e-5 on held-out rows', async () => {
    const bytes = exportTreeEnsembleToOnnx({ trees: model.trees, baseScore: model.baseScore, featureCount: data.features });
    const onnx = await onnxProbabilities(bytes, data.x, data.test, data.features);
    const expected = predictGbt(model, data.x, data.test, data.features);
    assert.ok(maxDiff(onnx, expected) < 1e-5, `max |onnx − predictGbt| = ${maxDiff(onnx, expected)}`);
    assert.ok(Math.max(...expected) - Math.min(...expected) > 0.5, 'not a constant');

    // Rows exactly on a threshold take the left (≤) branch in both.
    const onEdges = new Float64Array(model.trees.length * data.features);
    model.trees.forEach((tree, t) => {
      for (let j = 0; j < data.features; j++) onEdges[t * data.features + j] = 0.3;
      if (tree.feature[0]! >= 0) onEdges[t * data.features + tree.feature[0]!] = tree.threshold[0]!;
    });
    const edgeRows = Uint32Array.from({ length: model.trees.length }, (_, i) => i);
    const onnxEdges = await onnxProbabilities(bytes, onEdges, edgeRows, data.features);
    assert.ok(maxDiff(onnxEdges, predictGbt(model, onEdges, edgeRows, data.features)) < 1e-5);
  });

  test('the exporter refuses malformed trees, saying what is wrong', () => {
    const tree = model.trees[0]!;
    assert.throws(() => exportTreeEnsembleToOnnx({ trees: [], baseScore: 0, featureCount: 4 }), /at least one tree/);
    assert.throws(
      () =>
        exportTreeEnsembleToOnnx({
          trees: [{ ...tree, feature: tree.feature.map((f) => (f >= 0 ? 9 : f)) }],
          baseScore: 0,
          featureCount: 4,
        }),
      /feature must be < featureCount/,
    );
    assert.throws(
      () => exportTreeEnsembleToOnnx({ trees: [{ ...tree, left: tree.left.map((c) => (c > 0 ? 0 : c)) }], baseScore: 0, featureCount: 4 }),
      /children must be later nodes/,
    );
    assert.throws(
      () => exportTreeEnsembleToOnnx({ trees: [{ ...tree, value: [Number.NaN] }], baseScore: 0, featureCount: 4 }),
      /one entry per node/,
    );
  });
});

describe('trainDirectionModel with family gbt', () => {
  const PERIODS: TrainingPeriods = { validationFrom: new Date('2020-01-01T00:00:00Z'), testFrom: new Date('2022-01-01T00:00:00Z') };
  const strategy = findStrategy('direction-1d')!;
  let bars: Map<string, Bar[]>;
  let result: GbtTrainingResult;
  let onnx: Uint8Array;
  const steps: string[] = [];

  before(async () => {
    const market = createSyntheticMarket({
      symbols: ['AAA', 'BBB', 'CCC', 'DDD', 'EEE'],
      seed: 42,
      historyBars: 3000,
      startTime: new Date('2024-01-01T00:00:00Z'),
    });
    bars = await market.fetchBars(['AAA', 'BBB', 'CCC', 'DDD', 'EEE'], { lookback: 3000 });
    result = trainDirectionModel(bars, strategy, PERIODS, (step) => steps.push(step), { family: 'gbt', replicates: 200 });
    onnx = exportModel(result, { strategy: strategy.name, version: 'v2-gbt' });
  });

  const manifest = () =>
    buildManifest({
      strategy,
      version: 'v2-gbt',
      createdAt: new Date('2024-01-02T03:04:05.678Z'),
      result,
      onnx,
      bars,
      source: 'synthetic',
    });

  test('the manifest validates, says its family and hyperparameters, and carries the same held-out report as the logistic one', () => {
    const parsed = manifestSchema.parse(manifest());
    assert.equal(parsed.family, 'gbt');
    assert.match(parsed.modelType, /^gradient-boosted trees/);
    assert.equal(parsed.training.hyperparameters['trees'], result.model.trees.length);
    assert.equal(parsed.training.hyperparameters['maxDepth'], result.model.options.maxDepth);
    const m = parsed.offlineMetrics;
    assert.equal(m.period.from, '2022-01-01');
    assert.ok(
      m.estimates!.some((e) => e.metric === 'brierSkillVsTrainingBaseRate'),
      JSON.stringify(m.estimates!.map((e) => e.metric)),
    );
    assert.equal(m.estimation!.replicates, 200);
    assert.ok(Math.abs(m.intervalCoverage['0.95']! - 0.95) < 0.03);
    assert.match(steps[1]!, /^fitting gradient-boosted trees on \d+ samples/);
    // A logistic manifest has no family field (so committed models regenerate byte for byte) and still validates.
    const logistic = trainDirectionModel(bars, strategy, PERIODS, undefined, { replicates: 50 });
    const logisticManifest = buildManifest({
      strategy,
      version: 'v1',
      createdAt: new Date(0),
      result: logistic,
      onnx: exportModel(logistic, { strategy: strategy.name, version: 'v1' }),
      bars,
      source: 'synthetic',
    });
    assert.equal('family' in logisticManifest, false);
    assert.equal(manifestSchema.safeParse({ ...logisticManifest, family: 'forest' }).success, false);
  });

  test('the depth is the one of the grid 2, 3, 4 with the lowest validation log loss', () => {
    const samples = buildSamples(bars, strategy.horizonBars);
    const train = selectPeriod(samples, new Date(0), PERIODS.validationFrom);
    const validation = selectPeriod(samples, PERIODS.validationFrom, PERIODS.testFrom);
    const losses = [2, 3, 4].map((maxDepth) => {
      const model = fitGbt(samples.x, samples.y, train, validation, F, { maxDepth });
      return model.validationLogLoss[model.trees.length]!;
    });
    assert.equal(result.model.options.maxDepth, [2, 3, 4][losses.indexOf(Math.min(...losses))]);
    assert.deepEqual(result.model, fitGbt(samples.x, samples.y, train, validation, F, { maxDepth: result.model.options.maxDepth }));
  });

  test('deterministic: a second run gives identical numbers and identical ONNX bytes', () => {
    const again = trainDirectionModel(bars, strategy, PERIODS, undefined, { family: 'gbt', replicates: 200 });
    assert.deepEqual(again, result);
    assert.deepEqual(exportModel(again, { strategy: strategy.name, version: 'v2-gbt' }), onnx);
  });

  test('the exported ONNX gives predictGbt probabilities within 1e-5 on the held-out rows', async () => {
    const samples = buildSamples(bars, strategy.horizonBars);
    const test = selectPeriod(samples, PERIODS.testFrom, new Date('2100-01-01T00:00:00Z'));
    assert.ok(test.length > 1000);
    const got = await onnxProbabilities(onnx, samples.x, test, F);
    const expected = predictGbt(result.model, samples.x, test, F);
    assert.ok(maxDiff(got, expected) < 1e-5, `max |onnx − predictGbt| = ${maxDiff(got, expected)}`);
  });

  describe('served by an in-process gateway', () => {
    let fixture: ModelsFixture;
    let server: TestGateway;
    let stored: Bar[];
    before(async () => {
      fixture = await modelsFixture(['direction-1d']);
      const dir = path.join(fixture.dir, 'direction-1d', 'v2-gbt');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'model.onnx'), onnx);
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest(), null, 2));
      const market = createSyntheticMarket({
        symbols: ['GBT1', 'GBT2'],
        seed: 5,
        historyBars: 120,
        startTime: new Date('2024-03-01T00:00:00Z'),
      });
      stored = [...(await market.fetchBars(['GBT1', 'GBT2'], { lookback: 120 })).values()].flat();
      server = await startTestGateway({ MODELS_DIR: fixture.dir }, { bars: stored });
    });
    after(async () => {
      await server?.close();
      fixture?.remove();
    });

    test('the registry loads the gbt version (smoke inference included); a prediction asked of it is its calibrated probability, with an explanation', async () => {
      for (const symbol of ['GBT1', 'GBT2']) {
        const response = await postQuery<{
          prediction: {
            probability: number;
            model: { version: string };
            explanation: { baseline: number; factors: Array<{ contribution: number }> };
          };
        }>(
          server.url,
          'query ($symbol: String!) { prediction(symbol: $symbol, version: "v2-gbt") { probability model { version } explanation { baseline factors { contribution } } } }',
          { symbol },
        );
        assert.equal(response.errors, undefined, JSON.stringify(response.errors));
        assert.equal(response.data!.prediction.model.version, 'v2-gbt');
        const own = stored.filter((b) => b.symbol === symbol);
        const features = computeFeatures(own.slice(-FEATURE_WINDOW)).values;
        const raw = predictGbt(result.model, Float64Array.from(features), Uint32Array.of(0), F)[0]!;
        const expected = applyPlatt(result.calibration, raw);
        assert.ok(
          Math.abs(response.data!.prediction.probability - expected) < 1e-5,
          `${symbol}: ${response.data!.prediction.probability} vs ${expected}`,
        );
      }
    });
  });
});

describe('npm run train -- --family', () => {
  test('an unknown family is refused with the choices, before any data is read', async () => {
    const run = await runCliInProcess('train', ['--strategy', 'direction-1d', '--family', 'forest', '--data', '/nonexistent'], {});
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--family must be one of logistic, gbt \(got "forest"\)/);
  });

  test('--family gbt writes a gbt model.onnx and a manifest that validates, from CSV files', async () => {
    const temp = tempDir('sibyl-train-gbt-');
    try {
      const symbols = ['AAA', 'BBB'];
      // Ends 2021-04: the default periods (validation from 2015, held out from 2018) all have rows.
      const market = createSyntheticMarket({ symbols, seed: 11, historyBars: 5400, startTime: new Date('2021-04-21T00:00:00Z') });
      const bars = await market.fetchBars(symbols, { lookback: 5400 });
      const data = path.join(temp.dir, 'data');
      await mkdir(data);
      for (const [symbol, list] of bars) {
        const lines = list.map((b) => [b.time.toISOString().slice(0, 10), b.open, b.high, b.low, b.close, b.adjClose, b.volume].join(','));
        await writeFile(path.join(data, `${symbol}.csv`), ['Date,Open,High,Low,Close,Adj Close,Volume', ...lines].join('\n'));
      }
      const out = path.join(temp.dir, 'models');
      const run = await runCliInProcess(
        'train',
        ['--strategy', 'direction-1d', '--family', 'gbt', '--data', data, '--out', out, '--version', 'v2-gbt'],
        {},
      );
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /\d+ trees of depth ≤ [234], learning rate 0\.05/);
      const dir = path.join(out, 'direction-1d', 'v2-gbt');
      const manifest = manifestSchema.parse(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')));
      assert.equal(manifest.family, 'gbt');
      const bytes = await readFile(path.join(dir, 'model.onnx'));
      const session = await ort.InferenceSession.create(bytes);
      sessions.push(session);
      assert.deepEqual(session.outputNames, ['probability']);
    } finally {
      temp.remove();
    }
  });
});
