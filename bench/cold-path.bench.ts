import { row, type Bench, type BenchContext } from './lib/bench.js';
import { sequentialClient } from './lib/load.js';
import { SERIES, delta, scrape } from './lib/metrics.js';
import { seededGateways } from './lib/gateways.js';
import { benchSymbols } from './lib/postgres.js';
import { summarize, type Summary } from './lib/stats.js';
import { expectPredictions, predictionsRequest } from './lib/workload.js';

/**
 * The same 50-symbol `predictions` query with every cache off (market, features, predictions TTL 0),
 * from one client, one request at a time: what a request costs when nothing is cached, and proof from
 * the gateway's own counters that such a request makes exactly one market fetch (one SQL statement for
 * all 50 symbols) and one inference run (all 50 rows in one model call). The baseline is the p50 of the
 * same client against a gateway with its default, warm caches.
 */
const NAME = 'cold-path';
const SYMBOLS = 50;

async function run(context: BenchContext) {
  const requests = context.smoke ? 20 : 1_000;
  const warmup = context.smoke ? 5 : 100;
  // The two gateways take turns in blocks (both stay up; the idle one does nothing), so drift in what
  // else the machine is doing hits the figure and its baseline alike.
  const blocks = context.smoke ? 1 : 10;
  const request = predictionsRequest(benchSymbols(60).slice(0, SYMBOLS));
  const check = expectPredictions(SYMBOLS);
  const seeded = await seededGateways(context.shared, 'cold', { symbols: 60, bars: 250, configs: ['cold', 'default'] });
  const gateways = seeded.gateways;
  const clients: Array<ReturnType<typeof sequentialClient>> = [];
  try {
    for (const gateway of gateways) clients.push(sequentialClient(gateway.url, request, check));
    for (const client of clients) await client.timed(warmup, false);
    const before = await Promise.all(gateways.map((g) => scrape(g.url)));
    for (let block = 0; block < blocks; block++) {
      for (const client of clients) await client.timed(requests / blocks);
    }
    const after = await Promise.all(gateways.map((g) => scrape(g.url)));
    const [cold, warm] = gateways.map((_, i) => {
      const d = (series: string) => delta(before[i]!, after[i]!, series) / requests;
      const latency = summarize(clients[i]!.samples);
      context.log(
        `${i === 0 ? 'caches off' : 'warm caches'}: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms over ${requests} requests`,
      );
      return { latency, runs: d(SERIES.inferenceRuns), fetches: d(SERIES.marketFetches), rows: d(SERIES.batchRows) };
    }) as [Measured, Measured];

    const workload = `predictions ×${SYMBOLS}, caches off, 1 client × ${requests} requests`;
    const warmP50 = { name: 'warm p50', value: warm.latency.p50, unit: 'ms' };
    const show = (s: Summary) =>
      `mean ${s.mean.toFixed(2)} / p50 ${s.p50.toFixed(2)} / p90 ${s.p90.toFixed(2)} / p99 ${s.p99.toFixed(2)} / max ${s.max.toFixed(1)} ms`;
    return {
      rows: [
        row({ bench: NAME, workload, metric: 'p50 latency', figure: { value: cold.latency.p50, unit: 'ms' }, baseline: warmP50 }),
        row({
          bench: NAME,
          workload,
          metric: 'p99 latency',
          figure: { value: cold.latency.p99, unit: 'ms' },
          baseline: warmP50,
          target: { text: '≤ 5 ms', meets: (figure) => figure <= 5 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'inference runs/request',
          figure: { value: cold.runs, unit: '' },
          target: { text: '= 1', meets: (figure) => figure === 1 },
        }),
        row({
          bench: NAME,
          workload,
          metric: 'market fetches/request',
          figure: { value: cold.fetches, unit: '' },
          target: { text: '= 1', meets: (figure) => figure === 1 },
        }),
      ],
      notes: [
        `caches off: ${show(cold.latency)}; ${cold.rows.toFixed(1)} rows scored per request.`,
        `warm caches (defaults; the 1 s market tier expires and is refetched during the run): ${show(warm.latency)}; ${warm.fetches.toFixed(3)} market fetches and ${warm.runs.toFixed(3)} inference runs per request.`,
        `Client: one keep-alive node:http connection per gateway, in the benchmark's own process, next request sent when the previous answer is complete and checked; ${warmup} untimed requests first. Each configuration in its own gateway process (NODE_ENV=production, JSON request log) on the same seeded PostgreSQL scratch database; both stay up and take turns in ${blocks} block(s) of ${requests / blocks} requests. Runs and fetches per request are deltas of sibyl_inference_runs_total and sibyl_market_fetches_total around the timed requests.`,
      ],
    };
  } finally {
    for (const client of clients) client.close();
    await seeded.release();
  }
}

interface Measured {
  latency: Summary;
  runs: number;
  fetches: number;
  rows: number;
}

export default {
  name: NAME,
  title: 'the 50-symbol query with every cache off, one client: latency, fetches and runs per request',
  run,
} satisfies Bench;
