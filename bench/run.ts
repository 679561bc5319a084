import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseCli, processIo } from '../src/cli/args.js';
import type { Bench, BenchContext, BenchOutcome } from './lib/bench.js';
import { runCleanups } from './lib/cleanup.js';
import { startSharedGateways, type GatewayConfig } from './lib/gateways.js';
import { gitCommit, machineInfo } from './lib/machine.js';
import { resultsDir } from './lib/paths.js';
import { formatText, writeReport, type RunReport } from './lib/report.js';

/**
 * `npm run bench [-- --smoke] [name…]`: runs the benchmarks one after another (never in parallel: on
 * a 2-core machine two would measure each other), prints one table and writes it to bench/results.
 *
 * Each benchmark runs in a fresh process of its own (this file again, with `--child <name>`), which
 * imports only that benchmark's module (hence the lazy imports: the parent loads none). No benchmark
 * inherits another's heap, JIT state or leftover handles: the in-process one (inference) would
 * otherwise measure whatever ran before it, and the load generators would run in a process grown by
 * the previous benchmark's hundreds of thousands of samples.
 *
 * A smoke run (CI, seconds per benchmark, no figure judged) is mostly process start-ups, so there the
 * runner itself seeds one database and starts each gateway configuration the selected benchmarks use
 * (`gateways` below) once, in parallel, in the background while the benchmarks that borrow none run
 * first, and the benchmarks borrow them (bench/lib/gateways.ts). A full run never shares and never
 * overlaps: each benchmark starts its own, one benchmark at a time, in the order below.
 *
 * A full run writes `latest.json` and `latest.md`; a smoke run writes `smoke.json` and `smoke.md`, so
 * CI's smoke run never overwrites real figures. The exit code is 1 when a benchmark could not run or
 * produced a non-finite number; a target not met is reported as "short", not as a failure: whether a
 * target is met depends on the machine, and a benchmark that fails on a slow CI runner teaches people
 * to ignore it.
 */
const BENCHES: ReadonlyArray<{
  name: string;
  load: () => Promise<{ default: Bench }>;
  /** The gateway configurations it borrows in a smoke run (bench/lib/gateways.ts). */
  gateways?: readonly GatewayConfig[];
  /** Benchmarks whose values in `shared` it reads, so it runs after them. */
  after?: readonly string[];
}> = [
  { name: 'gateway-overhead', load: () => import('./gateway-overhead.bench.js'), gateways: ['default', 'responseCache'] },
  { name: 'cold-path', load: () => import('./cold-path.bench.js'), gateways: ['cold', 'default'] },
  { name: 'inference', load: () => import('./inference.bench.js') },
  { name: 'batching', load: () => import('./batching.bench.js'), gateways: ['cold', 'unbatched'] },
  { name: 'explanations', load: () => import('./explanations.bench.js'), gateways: ['default'] },
  { name: 'import', load: () => import('./import.bench.js') },
  { name: 'history', load: () => import('./history.bench.js'), gateways: ['default'] },
  { name: 'timescale-history', load: () => import('./timescale-history.bench.js') },
  { name: 'model-metrics', load: () => import('./model-metrics.bench.js') },
  { name: 'startup', load: () => import('./startup.bench.js'), after: ['gateway-overhead'] },
  { name: 'fanout', load: () => import('./fanout.bench.js') },
  { name: 'retrain', load: () => import('./retrain.bench.js') },
];

/** What a child process reports back on stdout. */
type ChildResult =
  { ok: true; title: string; outcome: BenchOutcome; shared: Record<string, unknown> } | { ok: false; title?: string; error: string };

async function main(argv: readonly string[]): Promise<number> {
  const usage =
    `usage: npm run bench [-- [--smoke] [${BENCHES.map((b) => b.name).join('|')}]…]\n\n` +
    'Runs the benchmarks (all, or those named), each in its own process, and writes bench/results.\n' +
    '  --smoke   run each briefly to check it works; nothing is measured\n';
  const parsed = parseCli(
    { name: 'bench', usage, options: { smoke: { type: 'boolean' } }, allowPositionals: true },
    { ...processIo(), argv },
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const smoke = parsed.values.smoke === true;
  const names = parsed.positionals;
  const unknown = names.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(' ')}\n\n${usage}`);
    return 2;
  }
  const selected = names.length ? BENCHES.filter((b) => names.includes(b.name)) : BENCHES;
  const startedAt = new Date().toISOString();
  const machine = machineInfo(); // before we load the machine ourselves
  const started = performance.now();
  let shared: Record<string, unknown> = {};

  // Smoke runs: the shared gateways start in the background while the benchmarks that need none
  // (nor anything another one leaves in `shared`) run first; nothing is measured, so they may overlap.
  const configs = smoke ? [...new Set(selected.flatMap((b) => b.gateways ?? []))] : [];
  let fixtures: Awaited<ReturnType<typeof startSharedGateways>> | undefined;
  let pendingFixtures: Promise<void> | undefined;
  if (configs.length) {
    process.stderr.write(`▶ starting shared gateways for the smoke run in the background: ${configs.join(', ')}\n`);
    const fixturesStarted = performance.now();
    const starting = startSharedGateways(configs);
    pendingFixtures = starting.then((started) => {
      fixtures = started;
      process.stderr.write(`  (shared gateways ready after ${((performance.now() - fixturesStarted) / 1000).toFixed(1)} s)\n`);
    });
    pendingFixtures.catch(() => undefined); // awaited before the first benchmark that borrows them
  }
  const independent = (b: (typeof selected)[number]) => !b.gateways?.length && !b.after?.length;
  const order = configs.length ? [...selected.filter(independent), ...selected.filter((b) => !independent(b))] : selected;

  const benches: Array<RunReport['benches'][number]> = [];
  for (const bench of order) {
    if (interrupted) break;
    if (pendingFixtures && !independent(bench)) {
      await pendingFixtures;
      pendingFixtures = undefined;
      shared = { ...shared, ...fixtures!.shared };
    }
    process.stderr.write(`▶ ${bench.name}\n`);
    const benchStarted = performance.now();
    const result = await runChild(bench.name, smoke, shared);
    const seconds = (performance.now() - benchStarted) / 1000;
    let error = result.ok ? problems(result.outcome) : result.error;
    if (result.ok && !error) {
      shared = result.shared;
      benches.push({
        name: bench.name,
        title: result.title,
        seconds,
        rows: result.outcome.rows,
        notes: result.outcome.notes ?? [],
        ...(result.outcome.tables && { tables: result.outcome.tables }),
      });
    } else {
      error ??= 'failed';
      process.stderr.write(`  ✗ ${bench.name} failed: ${error}\n`);
      benches.push({ name: bench.name, title: result.title ?? '', seconds, rows: [], notes: [], error });
    }
    process.stderr.write(`  (${seconds.toFixed(1)} s)\n`);
  }
  await pendingFixtures?.catch(() => undefined); // interrupted before any benchmark borrowed them
  await fixtures?.stop();

  const report: RunReport = {
    mode: smoke ? 'smoke' : 'full',
    startedAt,
    durationSeconds: (performance.now() - started) / 1000,
    commit: gitCommit(),
    machine,
    benches,
  };
  process.stdout.write(`\n${formatText(report)}\n\n`);
  const written = writeReport(report, resultsDir, smoke ? 'smoke' : 'latest');
  process.stdout.write(`wrote ${written.join(' and ')}\n`);
  return benches.some((b) => b.error) ? 1 : 0;
}

/** Why an outcome cannot be reported, if it cannot: no rows, or a figure that is not a number. */
function problems(outcome: BenchOutcome): string | undefined {
  if (outcome.rows.length === 0) return 'produced no figures';
  const bad = outcome.rows.filter((r) => !Number.isFinite(r.figure.value) || (r.baseline && !Number.isFinite(r.baseline.value)));
  return bad.length ? `non-finite figures: ${bad.map((r) => `${r.metric} (${r.workload})`).join(', ')}` : undefined;
}

function runChild(name: string, smoke: boolean, shared: Record<string, unknown>): Promise<ChildResult> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', name, ...(smoke ? ['--smoke'] : [])],
    {
      env: { ...process.env, BENCH_SHARED: JSON.stringify(shared) },
      stdio: ['ignore', 'pipe', 'inherit'], // progress goes straight to our stderr
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      try {
        resolve(JSON.parse(output) as ChildResult);
      } catch {
        resolve({ ok: false, error: `benchmark process exited (code ${code}, signal ${signal}) without a result` });
      }
    });
  });
}

/** The child half: runs one benchmark, answers with JSON on stdout, releases everything it made. */
async function runOne(name: string, smoke: boolean): Promise<number> {
  const shared = new Map(Object.entries(JSON.parse(process.env.BENCH_SHARED ?? '{}') as Record<string, unknown>));
  const context: BenchContext = { smoke, log: (message) => process.stderr.write(`  ${message}\n`), shared };
  let result: ChildResult;
  let title: string | undefined;
  try {
    const bench = (await BENCHES.find((b) => b.name === name)!.load()).default;
    title = bench.title;
    process.stderr.write(`  ${title}\n`);
    const outcome = await bench.run(context);
    result = { ok: true, title, outcome, shared: Object.fromEntries(shared) };
  } catch (error) {
    result = { ok: false, ...(title && { title }), error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  } finally {
    await runCleanups(); // anything the benchmark left running (it should have stopped it itself)
  }
  process.stdout.write(JSON.stringify(result));
  return result.ok ? 0 : 1;
}

const argv = process.argv.slice(2);
/** Set by SIGINT/SIGTERM in the parent: no further benchmark starts. */
let interrupted = false;
const childName = argv[0] === '--child' ? argv[1] : undefined;

// Ctrl-C reaches the whole process group: each child stops its servers and drops its scratch
// databases; the parent only waits for its child to finish doing so.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (childName === undefined) {
      // The parent waits for the running benchmark to clean up, starts no other, and stops the smoke
      // run's shared gateways and drops their database, if it started them.
      interrupted = true;
      void runCleanups();
      return;
    }
    process.stderr.write(`\n${signal}: stopping servers and dropping scratch databases…\n`);
    void runCleanups().finally(() => process.exit(130));
  });
}

(childName === undefined ? main(argv) : runOne(childName, argv.includes('--smoke'))).then(
  (code) => process.exit(code),
  async (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    await runCleanups();
    process.exit(1);
  },
);
