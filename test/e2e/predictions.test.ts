import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { manifestSchema } from '../../src/domain/manifest.js';
import { FEATURE_WINDOW, computeFeatures } from '../../src/domain/features.js';
import { PredictionDocument, PredictionsDocument, StrategiesDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { burstPost } from '../helpers/burst.js';
import { execute, postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { metricDeltas } from '../helpers/metrics.js';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

const SYMBOLS = Array.from({ length: 60 }, (_, i) => `S${String(i).padStart(2, '0')}`);
const RUNS = 'sibyl_inference_runs_total{strategy="direction-1d",version="v1"}';
const FETCHES = 'sibyl_market_fetches_total{provider="postgres"}';
const ROWS = 'sibyl_inference_batch_size_sum';

async function storedBars(symbols: readonly string[], count = 150): Promise<Bar[]> {
  const market = createSyntheticMarket({ symbols, seed: 99, historyBars: count, startTime: new Date('2024-03-01T00:00:00Z') });
  const bySymbol = await market.fetchBars(symbols, { lookback: count });
  return [...bySymbol.values()].flat().map((bar) => ({ ...bar, source: 'test-feed' }));
}

describe(`predictions served from stored bars (${stackName})`, () => {
  let server: TestGateway;
  let bars: Bar[];
  before(async () => {
    bars = await storedBars(SYMBOLS);
    server = await startTestGateway({}, { bars });
  });
  after(async () => server.close());

  test('a 50-symbol query makes exactly one market fetch and one inference run', async () => {
    const symbols = SYMBOLS.slice(0, 50);
    let response!: Awaited<ReturnType<typeof execute<unknown, unknown>>>;
    const delta = await metricDeltas(server.url, [RUNS, FETCHES, ROWS], async () => {
      response = await execute(server.url, PredictionsDocument, { symbols });
    });
    assert.equal(response.errors, undefined);
    assert.deepEqual(delta, { [RUNS]: 1, [FETCHES]: 1, [ROWS]: 50 });
  });

  test('every field is filled from the stored bars and the active model', async () => {
    const { data } = await execute(server.url, PredictionsDocument, { symbols: ['S01', 'S02'], level: 0.8 });
    const [p] = data!.predictions;
    const last = bars.filter((b) => b.symbol === 'S01').at(-1)!;
    assert.equal(p!.symbol, 'S01');
    assert.equal(p!.strategy, 'direction-1d');
    assert.equal(p!.horizon, '1d');
    assert.equal(p!.asOf, last.time.toISOString());
    assert.equal(p!.quote.close, last.close);
    assert.equal(p!.quote.source, 'test-feed');
    assert.equal(p!.stale, false);
    assert.equal(p!.expectedReturn, null);
    assert.deepEqual(p!.model, { strategy: 'direction-1d', version: 'v1', active: true });
    assert.match(p!.featuresHash, /^[0-9a-f]{32}$/);
    assert.ok(p!.probability > 0 && p!.probability < 1);
    assert.equal(p!.interval.level, 0.8);
    assert.ok(p!.interval.low < last.close && last.close < p!.interval.high);
  });

  test('the probability equals a direct onnxruntime run on independently fetched features, calibrated by the manifest', async () => {
    const dir = path.join(projectRoot, 'models/direction-1d/v1');
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
    const session = await ort.InferenceSession.create(readFileSync(path.join(dir, 'model.onnx')));
    try {
      for (const symbol of ['S03', 'S04', 'S05']) {
        const own = bars.filter((b) => b.symbol === symbol);
        const features = computeFeatures(own.slice(-FEATURE_WINDOW));
        const input = new Float32Array(manifest.features.length);
        manifest.features.forEach(
          (name, i) =>
            (input[i] =
              features.values[
                [
                  'ret_1d',
                  'ret_5d',
                  'ret_20d',
                  'ret_60d',
                  'vol_20d',
                  'vol_ratio_5_20',
                  'rsi_14',
                  'macd_hist',
                  'ma_dist_20',
                  'ma_dist_50',
                  'range_pos_20',
                  'dollar_volume_z20',
                  'hl_range',
                ].indexOf(name)
              ]!),
        );
        const out = await session.run({ features: new ort.Tensor('float32', input, [1, input.length]) });
        const raw = (out.probability!.data as Float32Array)[0]!;
        const logit = Math.log(raw / (1 - raw));
        const expected = 1 / (1 + Math.exp(-(manifest.calibration.a * logit + manifest.calibration.b)));
        const { data } = await execute(server.url, PredictionDocument, { symbol });
        assert.ok(Math.abs(data!.prediction.probability - expected) < 1e-9, `${symbol}: ${data!.prediction.probability} vs ${expected}`);
        assert.equal(data!.prediction.featuresHash, features.hash);
        const expectedSignal = expected > manifest.signal.buyAbove ? 'BUY' : expected < manifest.signal.sellBelow ? 'SELL' : 'HOLD';
        assert.equal(data!.prediction.signal, expectedSignal);
      }
    } finally {
      await session.release();
    }
  });

  test('repeated requests give identical results, and warm caches skip inference', async () => {
    const first = await execute(server.url, PredictionsDocument, { symbols: SYMBOLS.slice(10, 20) });
    let second!: typeof first;
    const delta = await metricDeltas(server.url, [RUNS], async () => {
      second = await execute(server.url, PredictionsDocument, { symbols: SYMBOLS.slice(10, 20) });
    });
    assert.deepEqual(second.data, first.data);
    assert.equal(delta[RUNS], 0);
  });

  test('an unknown symbol is null at its index with UNKNOWN_SYMBOL at its path; the rest succeed', async () => {
    const { data, errors } = await execute(server.url, PredictionsDocument, { symbols: ['S06', 'NOPE', 'S07'] });
    assert.equal(data!.predictions[0]!.symbol, 'S06');
    assert.equal(data!.predictions[1], null);
    assert.equal(data!.predictions[2]!.symbol, 'S07');
    assert.equal(errors?.length, 1);
    assert.deepEqual(errors![0]!.path, ['predictions', 1]);
    assert.equal(errors![0]!.extensions?.code, 'UNKNOWN_SYMBOL');
    assert.match(errors![0]!.message, /NOPE/);
  });

  test('duplicates are computed once but answered at every index', async () => {
    let response!: Awaited<ReturnType<typeof execute<unknown, unknown>>>;
    const delta = await metricDeltas(server.url, [ROWS], async () => {
      response = await execute(server.url, PredictionsDocument, { symbols: ['S50', 'S51', 'S50', 'S50'] });
    });
    const list = (response.data as { predictions: Array<{ symbol: string; probability: number }> }).predictions;
    assert.deepEqual(
      list.map((p) => p.symbol),
      ['S50', 'S51', 'S50', 'S50'],
    );
    assert.equal(list[0]!.probability, list[2]!.probability);
    assert.equal(delta[ROWS], 2);
  });

  test('bad input is refused with a code that names the problem', async () => {
    const malformed = await execute(server.url, PredictionsDocument, { symbols: ['AAPL', 'drop table'] });
    assert.equal(malformed.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(malformed.errors![0]!.message, /symbols.*upper-case ticker/);

    const tooMany = await execute(server.url, PredictionsDocument, { symbols: Array.from({ length: 201 }, (_, i) => `X${i}`) });
    assert.equal(tooMany.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(tooMany.errors![0]!.message, /at most 200 per request, got 201/);

    const strategy = await execute(server.url, PredictionsDocument, { symbols: ['S01'], strategy: 'direction-9y' });
    assert.equal(strategy.errors?.[0]?.extensions?.code, 'UNKNOWN_STRATEGY');
    assert.match(strategy.errors![0]!.message, /direction-1d, direction-5d/);

    const level = await execute(server.url, PredictionsDocument, { symbols: ['S01'], level: 0.5 });
    assert.equal(level.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(level.errors![0]!.message, /level must be one of 0.8, 0.9, 0.95, 0.99/);

    const single = await execute(server.url, PredictionDocument, { symbol: 'NOPE' });
    assert.equal(single.errors?.[0]?.extensions?.code, 'UNKNOWN_SYMBOL');

    const wrongType = await postQuery(server.url, 'query($s: [String!]!) { predictions(symbols: $s) { symbol } }', { s: 42 });
    assert.equal(wrongType.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  });

  test('another strategy uses its own model, in its own single run', async () => {
    const delta = await metricDeltas(server.url, ['sibyl_inference_runs_total{strategy="direction-5d",version="v1"}', RUNS], async () => {
      const { data } = await execute(server.url, PredictionsDocument, { symbols: SYMBOLS.slice(40, 45), strategy: 'direction-5d' });
      assert.ok(data!.predictions.every((p) => p!.strategy === 'direction-5d' && p!.horizon === '5d'));
    });
    assert.deepEqual(Object.values(delta), [1, 0]);
  });

  test('strategies lists each model with its offline metrics, labelled offline', async () => {
    const { data } = await execute(server.url, StrategiesDocument);
    assert.deepEqual(
      data!.strategies.map((s) => s.name),
      ['direction-1d', 'direction-5d'],
    );
    const metrics = data!.strategies[0]!.activeVersion.offlineMetrics!;
    assert.equal(metrics.source, 'offline');
    assert.ok(metrics.sampleSize > 10_000);
    assert.ok(metrics.baselineBrier! > 0 && metrics.brier! > 0);
    assert.equal(data!.strategies[0]!.activeVersion.features.length, 13);
  });

  test('the same query over graphql-ws gives the same predictions', async () => {
    const http = await postQuery(server.url, '{ predictions(symbols: ["S08", "S09"]) { symbol probability signal featuresHash } }');
    const client = wsClient(server.url);
    try {
      const ws = await wsExecute(client, '{ predictions(symbols: ["S08", "S09"]) { symbol probability signal featuresHash } }');
      assert.deepEqual(ws.data, http.data);
    } finally {
      await client.dispose();
    }
  });
});

describe(`cross-request batching (${stackName})`, () => {
  let server: TestGateway;
  const symbols = Array.from({ length: 200 }, (_, i) => `C${String(i).padStart(3, '0')}`);
  before(async () => {
    server = await startTestGateway(
      { PREDICTIONS_CACHE_TTL_MS: '0', FEATURES_CACHE_TTL_MS: '0', MARKET_CACHE_TTL_MS: '0' },
      { bars: await storedBars(symbols, 110) },
    );
  });
  after(async () => server.close());

  test('200 concurrent single-symbol requests share market fetches and inference runs', async () => {
    const runs = 'sibyl_inference_runs_total{strategy="direction-1d",version="v1"}';
    const query = 'query($s: String!) { prediction(symbol: $s) { symbol probability } }';
    let responses: Array<{ status: number; body: unknown }> = [];
    const delta = await metricDeltas(server.url, [runs, FETCHES], async () => {
      responses = await burstPost(
        Number(new URL(server.url).port),
        '/graphql',
        symbols.map((s) => ({ query, variables: { s } })),
      );
    });
    responses.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal((r.body as { data: { prediction: { symbol: string } } }).data.prediction.symbol, symbols[i]);
    });
    process.stdout.write(
      `# 200 concurrent requests → ${delta[FETCHES]} market fetches, ${delta[runs]} inference runs (mean batch ${(200 / delta[runs]).toFixed(1)})\n`,
    );
    // Measured on an idle machine: mean batch ~7 on PostgreSQL, ~4 or ~1.8 on PGlite (whose SQL runs as
    // WASM on the event loop); on a machine at load average 20 it fell to 1.1 (179 runs). How MUCH is
    // shared depends on scheduling, so that figure belongs to bench/batching; what a test can hold on any
    // machine is that requests DO share: fewer runs and fetches than requests (none shared would be 200).
    assert.ok(delta[runs] < symbols.length, `${delta[runs]} runs for ${symbols.length} requests: no run was shared`);
    assert.ok(delta[FETCHES] < symbols.length, `${delta[FETCHES]} fetches for ${symbols.length} requests: no fetch was shared`);
  });
});

describe(`predictions on a fresh machine: the synthetic market (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    server = await startTestGateway({ SYNTHETIC_TICK_MS: '100', MARKET_CACHE_TTL_MS: '0' });
  });
  after(async () => server.close());

  test('the default universe is served, every quote says synthetic, and new bars arrive as it ticks', async () => {
    const universe = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'JPM', 'XOM', 'JNJ', 'TSLA', 'BRK.B'];
    const first = await execute(server.url, PredictionsDocument, { symbols: universe });
    assert.equal(first.errors, undefined);
    assert.ok(first.data!.predictions.every((p) => p!.quote.source === 'synthetic'));
    await new Promise((resolve) => setTimeout(resolve, 350));
    const later = await execute(server.url, PredictionsDocument, { symbols: ['AAPL'] });
    assert.ok(new Date(later.data!.predictions[0]!.asOf) > new Date(first.data!.predictions[0]!.asOf));
  });
});
