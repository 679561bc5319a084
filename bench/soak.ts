import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { parseCli, processIo } from '../src/cli/args.js';
import { PrivatePostgres, findPostgres } from '../test/helpers/private-postgres.js';
import { PrivateRedis, findRedisServer } from '../test/helpers/private-redis.js';
import { BENCH_AUTHORIZATION } from './lib/auth.js';
import { runCleanups, registerCleanup, tempDir } from './lib/cleanup.js';
import { scrape } from './lib/metrics.js';
import { projectRoot, resultsDir } from './lib/paths.js';
import { startGateway, type ServerProcess } from './lib/process.js';

/**
 * `npm run soak [-- --minutes 5 --clients 8]`: the reliability soak. One gateway process on a PostgreSQL
 * and a Redis of its own (private servers, so restarting them disturbs nobody), mixed load for N
 * minutes (HTTP prediction queries from several clients, graphql-ws queries, a live `signals`
 * subscriber), and faults on a schedule:
 * Redis killed and restarted twice, PostgreSQL stopped and restarted twice. The synthetic market ticks
 * fast so every few hundred milliseconds brings new history keys, and the history buffer is small, so
 * outages spill to disk.
 *
 * Reports: requests, errors by code, history rows accepted (the history writer's own count, logged
 * when it closes) vs rows stored after the run plus rows spilled at shutdown (must be equal); from the
 * outside, every row a client was served (distinct keys, by queries and by live signals) must be
 * stored (0 lost) and none twice; gateway crashes (must be 0); RSS in the first minute after warm-up
 * and in the last minute (median of readings every 5 s; growth must stay under 20%). Writes
 * bench/results/soak.json and soak.md. Exit code 1 when an acceptance figure fails, so the soak can
 * gate a release.
 *
 * The private servers come from test/helpers (the same managers the fault tests use).
 */

const USAGE =
  'usage: npm run soak -- [--minutes 5] [--clients 6] [--tick-ms 250]\n\n' +
  'Mixed load against one gateway on a private PostgreSQL and Redis, with both restarted twice;\n' +
  'checks that no served history row is lost or stored twice, no crash, RSS growth under 20%.\n' +
  'Writes bench/results/soak.json and soak.md; exits 1 when an acceptance figure fails.\n';
const parsed = parseCli(
  {
    name: 'soak',
    usage: USAGE,
    options: {
      minutes: { type: 'string', default: '5' },
      clients: { type: 'string', default: '6' },
      'tick-ms': { type: 'string', default: '250' },
    },
  },
  processIo(),
);
if ('exitCode' in parsed) process.exit(parsed.exitCode);
const { values } = parsed;
const minutes = Number(values.minutes);
const clients = Number(values.clients);
const tickMs = Number(values['tick-ms']);
if (!(minutes > 0 && clients > 0 && tickMs >= 20)) {
  process.stderr.write(`soak: --minutes and --clients must be above 0, --tick-ms at least 20\n\n${USAGE}`);
  process.exit(2);
}

const STRATEGIES = ['direction-1d', 'direction-5d'];
const UNIVERSE = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOGL', 'JPM', 'XOM', 'JNJ', 'TSLA', 'BRK.B'];
const QUERY = `query Soak($symbols: [String!]!, $strategy: String) {
  predictions(symbols: $symbols, strategy: $strategy) { symbol strategy asOf probability stale model { version } }
}`;

interface Tally {
  signals: number;
  signalErrors: number;
  requests: number;
  predictions: number;
  errorsByCode: Record<string, number>;
  transportFailures: number;
}

const tally: Tally = { signals: 0, signalErrors: 0, requests: 0, predictions: 0, errorsByCode: {}, transportFailures: 0 };
const served = new Set<string>();
/** How and when (wall clock) each key was first served: what a lost row's diagnosis starts from. */
const firstServed = new Map<string, string>();
function serve(key: string, via: 'query' | 'signal'): void {
  if (served.has(key)) return;
  served.add(key);
  firstServed.set(key, `${via} at ${new Date().toISOString()}`);
}
const log = (message: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
const t0 = performance.now();

type Answer = {
  data?: { predictions: Array<{ symbol: string; strategy: string; asOf: string; model: { version: string } } | null> } | null;
  errors?: Array<{ extensions?: { code?: string } }>;
};

function count(answer: Answer): void {
  tally.requests++;
  for (const error of answer.errors ?? []) {
    const code = error.extensions?.code ?? '(no code)';
    tally.errorsByCode[code] = (tally.errorsByCode[code] ?? 0) + 1;
  }
  for (const p of answer.data?.predictions ?? []) {
    if (!p) continue;
    tally.predictions++;
    serve(`${p.symbol}|${p.strategy}|${p.model.version}|${new Date(p.asOf).toISOString()}`, 'query');
  }
}

function randomRequest() {
  const n = 1 + Math.floor(Math.random() * UNIVERSE.length);
  const symbols = [...UNIVERSE].sort(() => Math.random() - 0.5).slice(0, n);
  return { symbols, strategy: STRATEGIES[Math.floor(Math.random() * STRATEGIES.length)]! };
}

async function httpClient(url: string, until: () => boolean): Promise<void> {
  while (!until()) {
    try {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: BENCH_AUTHORIZATION },
        body: JSON.stringify({ query: QUERY, variables: randomRequest() }),
      });
      count((await response.json()) as Answer);
    } catch {
      tally.transportFailures++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function wsLoop(url: string, until: () => boolean): Promise<void> {
  let client: Client | undefined;
  while (!until()) {
    client ??= createClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      connectionParams: { authorization: BENCH_AUTHORIZATION },
    });
    try {
      const answer = await new Promise<Answer>((resolve, reject) => {
        let result: Answer = {};
        client!.subscribe(
          { query: QUERY, variables: randomRequest() },
          { next: (v) => void (result = v as Answer), error: reject, complete: () => resolve(result) },
        );
      });
      count(answer);
    } catch {
      tally.transportFailures++;
      await client.dispose();
      client = undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await client?.dispose();
}

/**
 * A live subscriber to every symbol of the universe, resubscribing (with `since` = the newest asOf it
 * saw, so nothing is missed) whenever its stream ends or its socket drops.
 */
async function signalsSubscriber(url: string, until: () => boolean): Promise<void> {
  let since: string | undefined;
  while (!until()) {
    const client = createClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      connectionParams: { authorization: BENCH_AUTHORIZATION },
    });
    await new Promise<void>((resolve) => {
      const stop = client.subscribe<{ signals: { symbol: string; strategy: string; asOf: string; model: { version: string } } }>(
        {
          query:
            'subscription Soak($symbols: [String!]!, $since: DateTimeISO) { signals(symbols: $symbols, strategy: "direction-1d", since: $since) { symbol strategy asOf probability model { version } } }',
          variables: { symbols: UNIVERSE, since },
        },
        {
          next: (value) => {
            if (value.errors?.length) tally.signalErrors++;
            const signal = value.data?.signals;
            const asOf = signal?.asOf;
            if (signal && asOf) {
              tally.signals++;
              // The monitor records what it publishes: a signal is an accepted history row too.
              serve(`${signal.symbol}|${signal.strategy}|${signal.model.version}|${new Date(asOf).toISOString()}`, 'signal');
              if (!since || asOf > since) since = asOf;
            }
          },
          error: () => {
            tally.signalErrors++;
            resolve();
          },
          complete: resolve,
        },
      );
      const timer = setInterval(() => {
        if (until()) {
          clearInterval(timer);
          stop();
          resolve();
        }
      }, 250);
    });
    await client.dispose();
    if (!until()) await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function main(): Promise<number> {
  const binaries = findPostgres();
  const redisBinary = findRedisServer();
  if (typeof binaries === 'string' || !redisBinary) {
    process.stderr.write(
      `soak needs private PostgreSQL and Redis servers: ${typeof binaries === 'string' ? binaries : 'no redis-server binary'}\n`,
    );
    return 2;
  }
  const postgres = new PrivatePostgres(binaries, 'sibyl_soak');
  registerCleanup(() => postgres.destroy());
  await postgres.init();
  await postgres.start();
  await postgres.createDatabase();
  const redis = new PrivateRedis(redisBinary);
  registerCleanup(() => redis.kill());
  await redis.start();

  // Our own DATA_DIR, kept until the end: rows the final flush could not write are spilled there.
  const dataDir = tempDir('sibyl-soak-');
  const gateway: ServerProcess = await startGateway({
    dataDir: dataDir.dir,
    env: {
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      LOG_LEVEL: 'info', // the "listening on" line is how readiness is detected
      SYNTHETIC_TICK_MS: String(tickMs),
      HISTORY_FLUSH_INTERVAL_MS: '200',
      HISTORY_MAX_BUFFER_ROWS: '1000',
      MARKET_CACHE_TTL_MS: '100',
      MODELS_DIR: path.join(projectRoot, 'models'),
      SHUTDOWN_TIMEOUT_MS: '20000',
    },
  });
  let crashed = false;
  const alive = () => {
    try {
      process.kill(gateway.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  log(
    `gateway on ${gateway.url}; private PostgreSQL :${postgres.port}, Redis :${redis.port}; ${minutes} min, ${clients} HTTP clients + 1 WS query client + 1 signals subscriber`,
  );

  const durationMs = minutes * 60_000;
  const loadStarted = performance.now();
  const end = loadStarted + durationMs;
  const until = () => performance.now() >= end;
  // The subscriber stays until the gateway stops: the monitor keeps recording (and publishing) ticks
  // for subscribed symbols after the query load ends, and those rows are accepted rows too.
  let gatewayStopping = false;
  const subscriber = signalsSubscriber(gateway.url, () => gatewayStopping);
  const load = [...Array.from({ length: clients }, () => httpClient(gateway.url, until)), wsLoop(gateway.url, until)];

  const rss = async () => (await scrape(gateway.url)).get('process_resident_memory_bytes') ?? NaN;
  const faults: string[] = [];
  const at = (fraction: number) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, loadStarted + fraction * durationMs - performance.now())));
  const outage = async (fraction: number, what: string, down: () => Promise<void>, up: () => Promise<void>, seconds: number) => {
    await at(fraction);
    log(`${what} down for ${seconds} s`);
    await down();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    await up();
    log(`${what} back`);
    faults.push(`${what} down ${seconds} s at ${Math.round(fraction * 100)}%`);
  };

  // Memory every 5 s. One reading at each end would mostly measure where the garbage collector's
  // sawtooth happened to be (V8's heap swings by 150 MiB under this load); the growth judged is the
  // median of the readings in the first minute after warm-up vs the median of the last minute's.
  const memory: Array<{ atS: number; rssMiB: number; heapMiB: number; heapTotalMiB: number; externalMiB: number }> = [];
  const sampler = setInterval(() => {
    void scrape(gateway.url)
      .then((m) => {
        const mib = (name: string) => Math.round((m.get(name) ?? NaN) / 2 ** 20);
        memory.push({
          atS: (performance.now() - loadStarted) / 1000,
          rssMiB: mib('process_resident_memory_bytes'),
          heapMiB: mib('nodejs_heap_size_used_bytes'),
          heapTotalMiB: mib('nodejs_heap_size_total_bytes'),
          externalMiB: mib('nodejs_external_memory_bytes'),
        });
      })
      .catch(() => undefined); // during a fault the scrape may fail; the next one counts
  }, 5_000);

  await at(0.1);
  const rssStart = await rss();
  log(`RSS after warm-up ${(rssStart / 2 ** 20).toFixed(0)} MiB`);
  const watchdog = setInterval(() => {
    if (!alive()) crashed = true;
  }, 500);
  const schedule = (async () => {
    await outage(
      0.15,
      'Redis',
      () => redis.kill(),
      () => redis.start(),
      5,
    );
    await outage(
      0.35,
      'PostgreSQL',
      () => postgres.stop('fast'),
      () => postgres.start(),
      8,
    );
    await outage(
      0.55,
      'Redis',
      () => redis.kill(),
      () => redis.start(),
      5,
    );
    await outage(
      0.75,
      'PostgreSQL',
      () => postgres.stop('immediate'),
      () => postgres.start(),
      8,
    );
  })();
  const progress = setInterval(() => {
    const m = memory.at(-1);
    log(
      `${tally.requests} requests, ${served.size} keys served, errors ${JSON.stringify(tally.errorsByCode)}${m ? `; RSS ${m.rssMiB} MiB, heap ${m.heapMiB} of ${m.heapTotalMiB} MiB` : ''}`,
    );
  }, 15_000);
  await Promise.all([...load, schedule]);
  clearInterval(progress);
  clearInterval(sampler);
  const rssEnd = await rss();
  const warmS = (0.1 * durationMs) / 1000;
  const loadS = durationMs / 1000;
  const windowS = Math.min(60, (loadS - warmS) / 3);
  const median = (values: number[]) => {
    const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : NaN;
  };
  const rssEarlyMiB = median(memory.filter((m) => m.atS >= warmS && m.atS < warmS + windowS).map((m) => m.rssMiB));
  const rssLateMiB = median(memory.filter((m) => m.atS >= loadS - windowS).map((m) => m.rssMiB));

  // Let the writer catch up (its own retry loop), then stop the gateway gracefully and count.
  const caughtUp = performance.now() + 60_000;
  while (performance.now() < caughtUp) {
    const metrics = await scrape(gateway.url).catch(() => undefined);
    if (metrics && metrics.get('sibyl_history_buffer_rows') === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  clearInterval(watchdog);
  crashed ||= !alive();
  gatewayStopping = true;
  await subscriber;
  const sigtermAt = new Date();
  log(`stopping the gateway (SIGTERM at ${sigtermAt.toISOString()})`);
  const exit = await gateway.stop(30_000);
  // A gateway that does not exit 0 on SIGTERM did not shut down cleanly: that is a crash too.
  const cleanExit = exit?.code === 0;
  crashed ||= !cleanExit;
  log(`gateway exited with code ${exit?.code}${exit?.signal ? ` (signal ${exit.signal})` : ''}`);
  // The gateway's last words: everything it logged from the second before SIGTERM on (requests aside).
  for (const line of gateway.output().split('\n')) {
    const time = /"time":"([^"]+)"/.exec(line)?.[1];
    const late = time !== undefined && Date.parse(time) >= sigtermAt.getTime() - 1_000;
    if ((late || !cleanExit) && !/"msg":"request"/.test(line)) log(`gateway: ${line.slice(0, 600)}`);
  }
  const rows = await postgres.query<{ key: string }>(
    `select symbol || '|' || strategy || '|' || model_version || '|' || to_char(time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as key from prediction_history`,
  );
  const stored = new Set(rows.map((r) => r.key));
  // Rows spilled at shutdown are not lost (the next start writes them), but they are not stored yet.
  const spillDir = path.join(dataDir.dir, 'history-spill');
  const spilled = new Set(
    (existsSync(spillDir) ? readdirSync(spillDir) : [])
      .filter((name) => name.endsWith('.ndjson'))
      .flatMap((name) => readFileSync(path.join(spillDir, name), 'utf8').split('\n').filter(Boolean))
      .map((line) => {
        const row = JSON.parse(line) as { symbol: string; strategy: string; modelVersion: string; time: number };
        return `${row.symbol}|${row.strategy}|${row.modelVersion}|${new Date(row.time).toISOString()}`;
      }),
  );
  dataDir.remove();
  const lost = [...served].filter((k) => !stored.has(k) && !spilled.has(k));
  // Stored rows no client saw: the monitor records each tick whether or not its events reach anyone
  // (a tick just after the subscriber left, or during shutdown); a subscriber that comes back gets
  // them through `since`. So they are counted by the gateway's own account below, not by what was served.
  const unseen = [...stored].filter((k) => !served.has(k));
  const account = writerAccount(gateway.output());
  const growth = rssLateMiB / rssEarlyMiB - 1;

  const report = {
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    minutes,
    clients,
    tickMs,
    faults,
    requests: tally.requests,
    predictions: tally.predictions,
    errorsByCode: tally.errorsByCode,
    signalsReceived: tally.signals,
    signalErrors: tally.signalErrors,
    transportFailures: tally.transportFailures,
    rowsAccepted: account?.acceptedRows ?? NaN,
    rowsStored: stored.size,
    rowsSpilledAtShutdown: spilled.size,
    rowsServed: served.size,
    rowsLost: lost.length,
    rowsUnseen: unseen.length,
    unseenSample: unseen.slice(0, 5),
    lostSample: lost.slice(0, 5).map((key) => `${key} (served by ${firstServed.get(key)})`),
    duplicateRows: rows.length - stored.size,
    crashes: crashed ? 1 : 0,
    rssStartMiB: Math.round(rssStart / 2 ** 20),
    rssEndMiB: Math.round(rssEnd / 2 ** 20),
    rssMedianFirstMinuteMiB: rssEarlyMiB,
    rssMedianLastMinuteMiB: rssLateMiB,
    rssGrowthPercent: Math.round(growth * 1000) / 10,
    memory: memory.map((m) => ({ ...m, atS: Math.round(m.atS) })),
  };
  const accountedFor = report.rowsAccepted === report.rowsStored + report.rowsSpilledAtShutdown;
  const pass = accountedFor && report.rowsLost === 0 && report.duplicateRows === 0 && report.crashes === 0 && growth <= 0.2;
  const md = [
    `# Soak: ${minutes} min, ${clients} HTTP clients + 1 graphql-ws query client + 1 signals subscriber — ${pass ? 'PASS' : 'FAIL'}`,
    '',
    `Faults: ${faults.join('; ')}`,
    '',
    '| figure | value | target |',
    '|---|---|---|',
    `| requests | ${report.requests} (${report.predictions} predictions) | |`,
    `| errors by code | ${JSON.stringify(report.errorsByCode)} | |`,
    `| transport failures | ${report.transportFailures} | |`,
    `| live signals received (one subscriber, resubscribing with since) / errors | ${report.signalsReceived} / ${report.signalErrors} | |`,
    `| history rows accepted (the writer's own count at close) / stored + spilled at shutdown (written by the next start) | ${report.rowsAccepted} / ${report.rowsStored} + ${report.rowsSpilledAtShutdown} | equal |`,
    `| rows served to clients (distinct keys) / of them lost | ${report.rowsServed} / ${report.rowsLost} | 0 lost |`,
    `| rows stored twice | ${report.duplicateRows} | 0 |`,
    `| rows stored that no client saw (monitor ticks after the subscriber left) | ${report.rowsUnseen} | |`,
    `| gateway crashes | ${report.crashes} | 0 |`,
    `| RSS, median of the first minute after warm-up → of the last minute (readings every 5 s) | ${report.rssMedianFirstMinuteMiB} → ${report.rssMedianLastMinuteMiB} MiB (${report.rssGrowthPercent}%) | ≤ 20% growth |`,
    `| RSS, single readings after warm-up → at the end | ${report.rssStartMiB} → ${report.rssEndMiB} MiB | |`,
    '',
    ...(report.rowsLost > 0 ? [`Lost rows (first 5): ${report.lostSample.join('; ')}`, ''] : []),
    `Memory every 5 s (s: RSS / V8 heap used / V8 heap committed, MiB): ${report.memory.map((m) => `${m.atS}: ${m.rssMiB}/${m.heapMiB}/${m.heapTotalMiB}`).join(', ')}`,
    '',
  ].join('\n');
  writeFileSync(path.join(resultsDir, 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(resultsDir, 'soak.md'), md);
  process.stdout.write(`${md}\n`);
  await redis.kill();
  await postgres.destroy();
  return pass ? 0 : 1;
}

/** The history writer's closing account ("history writer closed"), the gateway's own count of rows it accepted. */
function writerAccount(output: string): { acceptedRows: number; writtenRows: number; spilledRows: number } | undefined {
  for (const line of output.split('\n').reverse()) {
    if (!line.includes('"history writer closed"')) continue;
    try {
      return JSON.parse(line) as { acceptedRows: number; writtenRows: number; spilledRows: number };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

// Interrupted or terminated: the private servers and the gateway go too (they would outlive us).
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const)
  process.on(signal, () => void runCleanups().then(() => process.exit(code)));
main().then(
  async (code) => {
    await runCleanups();
    process.exit(code);
  },
  async (error: unknown) => {
    process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
    await runCleanups();
    process.exit(1);
  },
);
