import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { SERIES, scrape } from './lib/metrics.js';
import { startGateway } from './lib/process.js';
import { ensureBuilt, type GatewayBuild } from '../test/helpers/process.js';
import { median } from './lib/stats.js';

/**
 * How long the gateway takes to be ready on the embedded defaults, measured from spawning the process to
 * the first `GET /health/ready` answered 200: on a fresh PGlite data directory (the database is created
 * and migrated) and on an existing one. Compiled (dist/, as `npm start` runs it) beside the sources
 * through tsx (`npm run dev`, what `npm start` ran before the production build), in the same run. Plus
 * resident memory at idle, and, when gateway-overhead ran earlier in the same run, its gateway's memory
 * before and after that load. Targets from issue 20: ready ≤ 3 s, idle RSS ≤ 250 MB on PGlite.
 */
const NAME = 'startup';
const MIB = 2 ** 20;
const READY_TARGET_MS = 3_000;
const RSS_TARGET_MB = 250;

/** Polls /health/ready until 200; returns milliseconds since `spawned` (performance.now() at spawn). */
async function untilReady(url: string, spawned: number): Promise<number> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    const status = await fetch(`${url}/health/ready`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return performance.now() - spawned;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${url}/health/ready not 200 after 60 s`);
}

interface Samples {
  fresh: number[];
  existing: number[];
  ownFresh: number[];
  rss: number[];
}

async function measure(build: GatewayBuild, repetitions: number, context: BenchContext): Promise<Samples> {
  const samples: Samples = { fresh: [], existing: [], ownFresh: [], rss: [] };
  for (let rep = 0; rep < repetitions; rep++) {
    const data = tempDir('sibyl-bench-startup-');
    try {
      for (const times of [samples.fresh, samples.existing]) {
        const spawned = performance.now();
        const gateway = await startGateway({ dataDir: data.dir, build });
        try {
          times.push(await untilReady(gateway.url, spawned));
          if (times === samples.fresh) samples.ownFresh.push(Number(gateway.readyLine.startupMs));
          // Idle: ready, nothing asked yet, a moment for start-up garbage to be collected as it would be.
          else {
            await new Promise((resolve) => setTimeout(resolve, 2_000));
            samples.rss.push((await scrape(gateway.url)).get(SERIES.rss) ?? Number.NaN);
          }
        } finally {
          await gateway.stop(); // a clean stop releases the data directory's lock for the next start
        }
      }
      context.log(
        `${build}: fresh ${samples.fresh.at(-1)!.toFixed(0)} ms, existing ${samples.existing.at(-1)!.toFixed(0)} ms, ` +
          `RSS ${(samples.rss.at(-1)! / MIB).toFixed(0)} MiB`,
      );
    } finally {
      data.remove();
    }
  }
  return samples;
}

async function run(context: BenchContext) {
  const repetitions = context.smoke ? 1 : 3;
  ensureBuilt(); // before any clock starts: a stale dist/ is compiled here, not inside a measurement
  // Interleaved would be fairer to a machine whose load drifts; sequential keeps the code simple, and
  // each figure is a median of its own repetitions.
  const compiled = await measure('compiled', repetitions, context);
  const source = await measure('source', repetitions, context);
  const tsx = { name: 'same, src/ through tsx' };

  const rows: Row[] = [
    row({
      bench: NAME,
      workload: 'node dist/src/main.js, fresh PGlite data dir',
      metric: 'start → /health/ready 200',
      figure: { value: median(compiled.fresh), unit: 'ms' },
      baseline: { ...tsx, value: median(source.fresh), unit: 'ms' },
      target: { text: `≤ ${READY_TARGET_MS} ms`, meets: (figure) => figure <= READY_TARGET_MS },
    }),
    row({
      bench: NAME,
      workload: 'node dist/src/main.js, existing PGlite data dir',
      metric: 'start → /health/ready 200',
      figure: { value: median(compiled.existing), unit: 'ms' },
      baseline: { ...tsx, value: median(source.existing), unit: 'ms' },
    }),
    row({
      bench: NAME,
      workload: 'idle after ready, PGlite, synthetic market',
      metric: 'RSS',
      figure: { value: median(compiled.rss) / MIB, unit: 'MiB' },
      baseline: { ...tsx, value: median(source.rss) / MIB, unit: 'MiB' },
      target: { text: `≤ ${RSS_TARGET_MB} MB`, meets: (figure) => (figure * MIB) / 1e6 <= RSS_TARGET_MB },
    }),
  ];
  const overhead = context.shared.get('rss') as { idle?: number; afterLoad?: number } | undefined;
  if (overhead?.idle && overhead.afterLoad) {
    rows.push(
      row({
        bench: NAME,
        workload: 'gateway-overhead gateway (PostgreSQL), after its load',
        metric: 'RSS',
        figure: { value: overhead.afterLoad / MIB, unit: 'MiB' },
        baseline: { name: 'same process idle', value: overhead.idle / MIB, unit: 'MiB' },
      }),
    );
  }
  return {
    rows,
    notes: [
      `Median of ${repetitions} start(s) per build; every repetition uses a new data directory, started once fresh and once more after a clean stop; compiled first, then tsx. Times include Node start-up (and tsx's, for the baseline) but not npm's or the prestart build check (about 0.2 s when dist/ is current). The gateway's own startupMs on a fresh directory (its first line of code to listening) was ${median(compiled.ownFresh).toFixed(0)} ms compiled, ${median(source.ownFresh).toFixed(0)} ms through tsx.`,
      `RSS from process_resident_memory_bytes on /metrics 2 s after the existing-directory start was ready, before any query (the synthetic market builds its history on first use).`,
      overhead?.afterLoad
        ? 'The after-load RSS is the gateway-overhead gateway: read from its /metrics just before and just after its warm-up and measured load.'
        : 'RSS after load: gateway-overhead did not run in this run.',
    ],
  };
}

export default {
  name: NAME,
  title: 'process start to ready on fresh and existing PGlite, compiled and through tsx, and resident memory',
  run,
} satisfies Bench;
