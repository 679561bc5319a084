import { cpSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readBarsCsvFile } from '../src/infra/market-data/csv.js';
import { BarsRepository } from '../src/infra/market-data/bars-repository.js';
import type { Bar } from '../src/infra/market-data/market-data.js';
import { RetrainRunsRepository, type RetrainRun } from '../src/modules/retraining/index.js';
import { row, type Bench, type BenchContext } from './lib/bench.js';
import { tempDir } from './lib/cleanup.js';
import { post } from './lib/load.js';
import { marketDataDir, projectRoot } from './lib/paths.js';
import { createScratchDatabase, openMigrated } from './lib/postgres.js';
import { startGateway } from './lib/process.js';
import { ensureBuilt } from '../test/helpers/process.js';
import { summarize } from './lib/stats.js';

/**
 * Does scheduled retraining slow serving? (issue 22 item 2: "a benchmark shows warm-query p99 during a
 * training run against none".) One gateway (compiled, as `npm start` runs it) on a scratch PostgreSQL
 * database holding real daily bars, with RETRAIN_SCHEDULE firing once, at a second chosen so that the
 * gateway is up and warm well before it. Closed-loop clients send the same warm query (a cached
 * 5-symbol `predictions`) the whole time; each request is classed by when it started against the run
 * as the database records it (`retrain_runs.started_at` … `finished_at`): before the run is the baseline
 * ("none"), inside it is "during". Same process, same query, same clients, same minute.
 *
 * The training (reading the bars from the database into the child included) runs in a child process
 * at nice 10; the clients, the gateway, PostgreSQL and the child share the machine's cores.
 */
const NAME = 'retrain';
const QUERY_SYMBOLS = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO'];
const CLIENTS = 4;

async function realBars(symbols: readonly string[], from: string): Promise<Bar[]> {
  const directory = marketDataDir();
  const files = readdirSync(directory);
  const bars: Bar[] = [];
  for (const symbol of symbols) {
    const file = files.find((f) => f.startsWith(`DA-${symbol}-T-`));
    if (!file) throw new Error(`no CSV for ${symbol} in ${directory}`);
    const parsed = await readBarsCsvFile(path.join(directory, file));
    if (!parsed.ok) throw new Error(`${file}: ${parsed.reason}`);
    bars.push(...parsed.bars.filter((b) => b.time >= new Date(from)));
  }
  return bars;
}

/** The symbols of the data set, by file name (`DA-<symbol>-T-<date>.csv`). */
function allSymbols(): string[] {
  return readdirSync(marketDataDir())
    .map((f) => /^DA-(.+)-T-/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

function cronAt(at: Date): string {
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} *`;
}

interface Sample {
  readonly start: number; // epoch ms
  readonly end: number;
  readonly ms: number;
}

const bench: Bench = {
  name: NAME,
  title: 'Warm-query p99 while a scheduled retraining runs (child process) against none, one gateway, same run',
  async run(context: BenchContext) {
    const smoke = context.smoke;
    const symbols = smoke ? QUERY_SYMBOLS : [...new Set([...QUERY_SYMBOLS, ...allSymbols()])].slice(0, 20);
    const from = smoke ? '2009-01-01' : '1999-01-01';
    const bars = await realBars(symbols, from);
    context.log(`${bars.length.toLocaleString('en-US')} real bars of ${symbols.length} symbols from ${from}`);

    const scratch = await createScratchDatabase(NAME);
    const database = await openMigrated(scratch.url);
    try {
      await new BarsRepository(database.db).upsert(bars);
    } finally {
      await database.close();
    }
    const models = tempDir('sibyl-bench-models-');
    for (const strategy of ['direction-1d', 'direction-5d']) {
      cpSync(path.join(projectRoot, 'models', strategy, 'v1'), path.join(models.dir, strategy, 'v1'), { recursive: true });
    }
    ensureBuilt(); // before the clock starts: a first build takes longer than any lead
    // The gateway must be up and warm well before the tick, with `baselineMs` left for the baseline. On a
    // busy machine start-up can overrun the lead: then it is started again with a longer one.
    const baselineMs = smoke ? 3_000 : 12_000;
    let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
    let at = new Date();
    for (let lead = smoke ? 10_000 : 25_000; !gateway; lead *= 2) {
      at = new Date(Math.ceil((Date.now() + lead) / 1000) * 1000);
      const started = await startGateway({
        env: {
          DATABASE_URL: scratch.url,
          MODELS_DIR: models.dir,
          RETRAIN_SCHEDULE: cronAt(at),
          RETRAIN_TIMEZONE: 'UTC',
          RETRAIN_STRATEGIES: 'direction-1d',
          SYNTHETIC_TICK_MS: '0',
          OUTCOMES_INTERVAL_MS: '0',
          SIGNALS_INTERVAL_MS: '0',
        },
      });
      if (Date.now() < at.getTime() - baselineMs - 2_000) gateway = started;
      else if (lead >= 120_000) throw new Error(`the gateway took too long to start (tick at ${at.toISOString()})`);
      else {
        context.log(`the gateway started too late for the tick at ${at.toISOString()}; again with a ${(2 * lead) / 1000} s lead`);
        await started.stop();
      }
    }
    const runs = await openMigrated(scratch.url);
    try {
      const body = JSON.stringify({
        query: `{ predictions(symbols: ${JSON.stringify(QUERY_SYMBOLS)}, strategy: "direction-1d") { symbol probability signal } }`,
      });
      const url = new URL('/graphql', gateway.url);
      const check = (text: string) => {
        if (text.includes('"errors"')) throw new Error(`the query answered errors: ${text.slice(0, 300)}`);
      };
      check((await post(url, body)).body); // prime the caches

      const samples: Sample[] = [];
      let stop = false;
      const client = async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          while (!stop) {
            const start = performance.timeOrigin + performance.now();
            const answer = await post(url, body, agent);
            const end = performance.timeOrigin + performance.now();
            if (answer.status !== 200) throw new Error(`answered ${answer.status}: ${answer.body.slice(0, 300)}`);
            check(answer.body);
            samples.push({ start, end, ms: end - start });
          }
        } finally {
          agent.destroy();
        }
      };
      const warmupEnds = Date.now() + 2_000;
      const load = Promise.all(Array.from({ length: CLIENTS }, client));
      const repository = new RetrainRunsRepository(runs.db);
      let run: RetrainRun | undefined;
      const deadline = at.getTime() + (smoke ? 60_000 : 300_000);
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        run = (await repository.recent('direction-1d'))[0];
        if (run && run.status !== 'running') break;
      }
      stop = true;
      await load;
      if (!run || run.status !== 'succeeded' || !run.finishedAt)
        throw new Error(`the retraining run did not succeed: ${JSON.stringify(run)}`);
      const started = run.startedAt.getTime();
      const finished = run.finishedAt.getTime();
      const none = samples.filter((s) => s.start >= warmupEnds && s.end < started).map((s) => s.ms);
      const during = samples.filter((s) => s.start >= started && s.end <= finished).map((s) => s.ms);
      if (none.length < 100 || during.length < 100)
        throw new Error(`too few samples: ${none.length} before the run, ${during.length} during it`);
      const before = summarize(none);
      const inside = summarize(during);
      const noneSeconds = (started - warmupEnds) / 1000;
      const duringSeconds = (finished - started) / 1000;
      context.log(
        `training ${run.version} took ${duringSeconds.toFixed(1)} s: p99 ${inside.p99.toFixed(2)} ms during (${during.length} requests) vs ${before.p99.toFixed(2)} ms before (${none.length})`,
      );
      const workload = `${CLIENTS} closed-loop clients, cached predictions of ${QUERY_SYMBOLS.length} symbols; training direction-1d on ${bars.length.toLocaleString('en-US')} stored bars of ${symbols.length} symbols`;
      const baseline = (value: number) => ({ name: 'same gateway, before the run', value, unit: 'ms' });
      return {
        rows: [
          row({
            bench: NAME,
            workload,
            metric: 'p99 latency during the training run',
            figure: { value: inside.p99, unit: 'ms' },
            baseline: baseline(before.p99),
          }),
          row({
            bench: NAME,
            workload,
            metric: 'p50 latency during the training run',
            figure: { value: inside.p50, unit: 'ms' },
            baseline: baseline(before.p50),
          }),
          row({
            bench: NAME,
            workload,
            metric: 'throughput during the training run',
            figure: { value: during.length / duringSeconds, unit: 'req/s' },
            baseline: { name: 'same gateway, before the run', value: none.length / noneSeconds, unit: 'req/s' },
          }),
          row({ bench: NAME, workload, metric: 'training run (claim to audited shadow)', figure: { value: duringSeconds, unit: 's' } }),
        ],
        notes: [
          `Requests are classed by start time against retrain_runs.started_at/finished_at: ${none.length} before the run (${noneSeconds.toFixed(1)} s after a warm-up), ${during.length} during it (${duringSeconds.toFixed(1)} s).`,
          'The run reads the bars from PostgreSQL on the gateway (one symbol per read) and trains in a child process at nice 10; the load generator, the gateway, PostgreSQL and the child share the same cores.',
          `Max latency: ${inside.max.toFixed(1)} ms during, ${before.max.toFixed(1)} ms before.`,
        ],
      };
    } finally {
      await runs.close();
      await gateway!.stop();
      models.remove();
      await scratch.drop();
    }
  },
};

export default bench;
