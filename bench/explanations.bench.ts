import { row, type Bench, type BenchContext } from './lib/bench.js';
import { graphql, sequentialClient, type JsonRequest } from './lib/load.js';
import { SERIES, delta, scrape } from './lib/metrics.js';
import { seededGateways } from './lib/gateways.js';
import { benchSymbols } from './lib/postgres.js';
import { summarize } from './lib/stats.js';
import { PREDICTIONS_QUERY, expectPredictions, predictionsRequest } from './lib/workload.js';

/**
 * What asking for explanations costs: the web app's 50-symbol `predictions` query with and without
 * `explanation { … }` (every field, every factor), one request at a time on one keep-alive connection,
 * the two queries taking turns so drift hits both alike. Predictions come from the warm cache in both
 * (as on a watch list refreshed within the cache TTL); explanations are computed on every request
 * (they are not cached): one inference run of 1 + 50 × 384 rows, the Shapley sums, the words, and one
 * SQL query for realized accuracy. Figure: p50 latency with explanations; baseline: without.
 */
const NAME = 'explanations';
const SYMBOLS = 50;

const EXPLAINED_QUERY = PREDICTIONS_QUERY.replace(
  /\n\s*}\n}$/,
  `
    explanation { method baseline summary historicalAccuracy historicalAccuracySource historicalAccuracySamples
      factors { feature value baselineValue contribution description } }
  }
}`,
);

function explainedRequest(symbols: readonly string[]): JsonRequest {
  return { path: '/graphql', body: JSON.stringify({ operationName: 'Predictions', query: EXPLAINED_QUERY, variables: { symbols } }) };
}

async function run(context: BenchContext) {
  const rounds = context.smoke ? 3 : 40;
  const perTurn = 5;
  const symbols = benchSymbols(60).slice(0, SYMBOLS);
  const seeded = await seededGateways(context.shared, 'explanations', { symbols: 60, bars: 250, configs: ['default'] });
  const gateway = seeded.gateways[0]!;
  const check = expectPredictions(SYMBOLS);
  const plain = sequentialClient(gateway.url, predictionsRequest(symbols), check);
  const explained = sequentialClient(gateway.url, explainedRequest(symbols), (body) => {
    check(body);
    if (!body.includes('"factors"')) throw new Error(`no explanation in the answer: ${body.slice(0, 300)}`);
  });
  try {
    const answer = await graphql<{ predictions: Array<{ explanation: { method: string } }> }>(gateway.url, explainedRequest(symbols));
    const method = answer.data.predictions[0]!.explanation.method;
    // Warm-up: JIT, the cache, the database connection.
    await plain.timed(context.smoke ? 2 : 20, false);
    await explained.timed(context.smoke ? 2 : 20, false);
    const before = await scrape(gateway.url);
    for (let i = 0; i < rounds; i++) {
      await plain.timed(perTurn);
      await explained.timed(perTurn);
    }
    const after = await scrape(gateway.url);
    const runs = delta(before, after, SERIES.inferenceRuns);
    const rows = delta(before, after, SERIES.batchRows);
    const inferenceSeconds = delta(before, after, 'sibyl_inference_seconds_sum');
    const withE = summarize(explained.samples);
    const without = summarize(plain.samples);
    context.log(
      `with explanations p50 ${withE.p50.toFixed(2)} ms, without ${without.p50.toFixed(2)} ms; ${runs} runs, ${(rows / Math.max(1, runs)).toFixed(0)} rows per run`,
    );

    const workload = `predictions ×${SYMBOLS} + explanation, sequential, warm prediction cache`;
    const base = (value: number) => ({ name: 'without explanation', value, unit: 'ms' });
    return {
      rows: [
        row({
          bench: NAME,
          workload,
          metric: 'p50 latency',
          figure: { value: withE.p50, unit: 'ms' },
          baseline: base(without.p50),
          target: { text: '≤ 5× without', meets: (_, ratio) => (ratio ?? Infinity) <= 5 },
        }),
        row({ bench: NAME, workload, metric: 'p99 latency', figure: { value: withE.p99, unit: 'ms' }, baseline: base(without.p99) }),
        row({
          bench: NAME,
          workload,
          metric: 'inference runs/request',
          figure: { value: runs / explained.samples.length, unit: '' },
          target: { text: '1', meets: (f) => f === 1 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'inference time/run',
          figure: { value: (1000 * inferenceSeconds) / Math.max(1, runs), unit: 'ms' },
        }),
      ],
      notes: [
        `${explained.samples.length} requests of each query, one at a time on one keep-alive connection each, in turns of ${perTurn}, after a warm-up; method ${method}; ${(rows / Math.max(1, runs)).toFixed(0)} rows per explanation run (all 50 symbols in one run; INFERENCE_MAX_BATCH=1024 does not split it).`,
        `with explanations: p50 ${withE.p50.toFixed(2)} / p90 ${withE.p90.toFixed(2)} / p99 ${withE.p99.toFixed(2)} ms; without: p50 ${without.p50.toFixed(2)} / p90 ${without.p90.toFixed(2)} / p99 ${without.p99.toFixed(2)} ms. Every inference run in the window was an explanation run (predictions were cached): ${runs} runs.`,
        `Gateway: NODE_ENV=production, PostgreSQL scratch database with 60 symbols × 250 synthetic bars and no realized outcomes (accuracy falls back to the manifests' offline bins after the one history query).`,
      ],
    };
  } finally {
    plain.close();
    explained.close();
    await seeded.release();
  }
}

export default {
  name: NAME,
  title: '50-symbol predictions with explanations vs without: latency ratio, inference runs',
  run,
} satisfies Bench;
