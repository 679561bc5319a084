import { row, type Bench, type BenchContext } from './lib/bench.js';
import { burst } from './lib/burst.js';
import { graphql } from './lib/load.js';
import { SERIES, delta, scrape } from './lib/metrics.js';
import { seededGateways } from './lib/gateways.js';
import { benchSymbols } from './lib/postgres.js';
import { median, summarize, type Summary } from './lib/stats.js';
import { predictionRequest } from './lib/workload.js';

/**
 * Cross-request batching: 200 single-symbol `prediction` requests (200 different symbols) arriving
 * together, sent from a separate client process, at a gateway with every cache off so each request
 * really needs bars, features and a model run. Measured: rows per inference run (the micro-batcher
 * merging requests), market fetches (the coalescer merging them), and each request's latency. The
 * baseline is the same burst with INFERENCE_MAX_BATCH=1, which makes every inference run one row.
 *
 * That baseline switches off inference batching only: market-fetch coalescing has no switch and stays
 * on in both, and with a max batch of 1 the batcher still queues the rows of one event-loop turn and
 * runs them one after another (it splits, it does not dispatch separately).
 */
const NAME = 'batching';
const REQUESTS = 200;
const LABELS = ['batching on', 'INFERENCE_MAX_BATCH=1'];

async function run(context: BenchContext) {
  const rounds = context.smoke ? 1 : 12;
  const symbols = benchSymbols(REQUESTS);
  const bodies = symbols.map((symbol) => predictionRequest(symbol).body);
  // Both gateways stay up and take turns (the idle one costs nothing), so drift in what else the
  // machine is doing hits both configurations alike instead of whichever ran second.
  const seeded = await seededGateways(context.shared, 'batching', { symbols: REQUESTS, bars: 150, configs: ['cold', 'unbatched'] });
  const gateways = seeded.gateways;
  try {
    const targets = gateways.map((g) => ({ port: g.port, path: '/graphql', bodies }));
    for (const gateway of gateways) await graphql(gateway.url, predictionRequest(symbols[0]!));
    // Warm-up bursts (JIT, connection pool); smoke runs skip them to stay within CI's minute.
    if (!context.smoke) await burst(targets, { rounds: 1 });
    const before = await Promise.all(gateways.map((g) => scrape(g.url)));
    const results = await burst(targets, { rounds });
    const after = await Promise.all(gateways.map((g) => scrape(g.url)));

    const [on, off] = gateways.map((_, i) => {
      const own = results[i]!;
      const failed = own.flatMap((r) => r.responses).filter((r) => !r.ok);
      if (failed.length)
        throw new Error(
          `${LABELS[i]}: ${failed.length} of ${REQUESTS * rounds} requests failed, e.g. ${failed[0]!.status} ${failed[0]!.sample}`,
        );
      const d = (series: string) => delta(before[i]!, after[i]!, series);
      const measured = {
        latency: summarize(own.flatMap((r) => r.responses.map((x) => x.ms))),
        wallMs: median(own.map((r) => r.wallMs)),
        meanBatch: d(SERIES.batchRows) / d(SERIES.batchCount),
        runs: d(SERIES.inferenceRuns) / rounds,
        fetches: d(SERIES.marketFetches) / rounds,
      };
      context.log(
        `${LABELS[i]}: mean batch ${measured.meanBatch.toFixed(1)} rows, ${measured.fetches.toFixed(1)} fetches/burst, p50 ${measured.latency.p50.toFixed(1)} ms, p99 ${measured.latency.p99.toFixed(1)} ms`,
      );
      return measured;
    }) as [Measured, Measured];

    const workload = `${REQUESTS} concurrent prediction(symbol), caches off`;
    const base = (value: number, unit: string) => ({ name: 'max batch 1', value, unit });
    return {
      rows: [
        row({
          bench: NAME,
          workload,
          metric: 'mean batch size',
          figure: { value: on.meanBatch, unit: 'rows' },
          baseline: base(off.meanBatch, 'rows'),
        }),
        row({ bench: NAME, workload, metric: 'inference runs/burst', figure: { value: on.runs, unit: '' }, baseline: base(off.runs, '') }),
        row({
          bench: NAME,
          workload,
          metric: 'market fetches/burst',
          figure: { value: on.fetches, unit: '' },
          baseline: base(off.fetches, ''),
        }),
        row({
          bench: NAME,
          workload,
          metric: 'p50 latency',
          figure: { value: on.latency.p50, unit: 'ms' },
          baseline: base(off.latency.p50, 'ms'),
        }),
        row({
          bench: NAME,
          workload,
          metric: 'p99 latency',
          figure: { value: on.latency.p99, unit: 'ms' },
          baseline: base(off.latency.p99, 'ms'),
        }),
        row({ bench: NAME, workload, metric: 'added latency p50', figure: { value: on.latency.p50 - off.latency.p50, unit: 'ms' } }),
        row({ bench: NAME, workload, metric: 'added latency p99', figure: { value: on.latency.p99 - off.latency.p99, unit: 'ms' } }),
        row({
          bench: NAME,
          workload,
          metric: 'burst wall time',
          figure: { value: on.wallMs, unit: 'ms' },
          baseline: base(off.wallMs, 'ms'),
        }),
      ],
      notes: [
        `Batching on = the gateway's defaults (INFERENCE_MAX_BATCH=1024, no queue delay). Baseline = INFERENCE_MAX_BATCH=1: every inference run is one row. Market-fetch coalescing stays on in both (it has no switch), so "market fetches/burst" is the coalescer's work in both columns.`,
        `Each figure covers ${rounds} burst(s) per configuration after ${context.smoke ? 'no' : '1'} warm-up burst, the two gateways taking turns (both stay up; the idle one does nothing), ${REQUESTS} requests each (${REQUESTS * rounds} latencies); "added latency" is batching-on minus baseline (negative: batching made requests faster). Latency is measured in the client process, from a request's write to the end of its answer; the ${REQUESTS} connections are opened before the clock starts.`,
        `Client: a separate process that opens ${REQUESTS} connections, then writes every request in one synchronous loop (Connection: close). Gateway: NODE_ENV=production, JSON request log, PostgreSQL scratch database with ${REQUESTS} symbols × 150 synthetic bars, MARKET/FEATURES/PREDICTIONS_CACHE_TTL_MS=0.`,
        `p50/p90 batching on: ${on.latency.p50.toFixed(1)} / ${on.latency.p90.toFixed(1)} ms; baseline: ${off.latency.p50.toFixed(1)} / ${off.latency.p90.toFixed(1)} ms.`,
      ],
    };
  } finally {
    await seeded.release();
  }
}

interface Measured {
  latency: Summary;
  wallMs: number;
  meanBatch: number;
  runs: number;
  fetches: number;
}

export default {
  name: NAME,
  title: '200 simultaneous single-symbol requests with caches off: batch sizes, fetches, latency vs max batch 1',
  run,
} satisfies Bench;
