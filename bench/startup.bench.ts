import { row, type Bench, type BenchContext, type Row } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { SERIES, scrape } from './lib/metrics.js';
import { startGateway } from './lib/process.js';
import { median } from './lib/stats.js';

/**
 * How long `npm start` takes to serve on the embedded defaults, measured from spawning the process to
 * its "listening on" line: on a fresh PGlite data directory (the database is created and migrated) and
 * on an existing one. Plus resident memory at idle, and, when gateway-overhead ran earlier in the same
 * run, its gateway's memory before and after that load. No target: reported so changes show.
 */
const NAME = 'startup';
const MIB = 2 ** 20;

async function run(context: BenchContext) {
  const repetitions = context.smoke ? 1 : 3;
  const fresh: number[] = [];
  const existing: number[] = [];
  const ownFresh: number[] = [];
  const ownExisting: number[] = [];
  const rss: number[] = [];
  for (let rep = 0; rep < repetitions; rep++) {
    const data = tempDir('sibyl-bench-startup-');
    try {
      for (const [times, own] of [
        [fresh, ownFresh],
        [existing, ownExisting],
      ] as const) {
        const gateway = await startGateway({ dataDir: data.dir });
        try {
          times.push(gateway.readyMs);
          own.push(Number(gateway.readyLine.startupMs));
          if (times === existing) rss.push((await scrape(gateway.url)).get(SERIES.rss) ?? Number.NaN);
        } finally {
          await gateway.stop(); // a clean stop releases the data directory's lock for the next start
        }
      }
      context.log(`fresh ${fresh.at(-1)!.toFixed(0)} ms, existing ${existing.at(-1)!.toFixed(0)} ms`);
    } finally {
      data.remove();
    }
  }

  const rows: Row[] = [
    row({
      bench: NAME,
      workload: 'npm start, fresh PGlite data dir',
      metric: 'start → listening',
      figure: { value: median(fresh), unit: 'ms' },
    }),
    row({
      bench: NAME,
      workload: 'npm start, existing PGlite data dir',
      metric: 'start → listening',
      figure: { value: median(existing), unit: 'ms' },
    }),
    row({
      bench: NAME,
      workload: 'idle after start, PGlite, synthetic market',
      metric: 'RSS',
      figure: { value: median(rss) / MIB, unit: 'MiB' },
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
      `Median of ${repetitions} start(s) each; every repetition uses a new data directory, started once fresh and once more after a clean stop. Times include Node and tsx start-up (as with npm start); the gateway's own startupMs (from its first line of code to listening) was ${median(ownFresh).toFixed(0)} ms fresh and ${median(ownExisting).toFixed(0)} ms existing.`,
      `RSS from process_resident_memory_bytes on /metrics right after the existing-directory start, before any query (the synthetic market builds its history on first use).`,
      overhead?.afterLoad
        ? 'The after-load RSS is the gateway-overhead gateway: read from its /metrics just before and just after its warm-up and measured load.'
        : 'RSS after load: gateway-overhead did not run in this run.',
    ],
  };
}

export default { name: NAME, title: 'process start to listening on fresh and existing PGlite, and resident memory', run } satisfies Bench;
