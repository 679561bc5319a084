import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCli, processIo } from '../src/cli/args.js';
import { runCleanups, tempDir } from './lib/cleanup.js';
import { formatSummary, summarizeProfile } from './lib/cpu-profile.js';
import { closedLoop, graphql } from './lib/load.js';
import { benchSymbols, seededDatabase } from './lib/postgres.js';
import { startGateway } from './lib/process.js';
import { expectPredictions, predictionsRequest } from './lib/workload.js';

/**
 * `npm run bench:profile [-- options]`: where the gateway's CPU goes on the gateway-overhead workload.
 * Seeds a scratch PostgreSQL database as that benchmark does, starts the production gateway (compiled
 * dist/, NODE_ENV=production, JWT) under `node --cpu-prof`, warms it up, loads it with autocannon, and
 * summarizes only the samples taken during the measured window (self time by area and function,
 * inclusive time), per request. A profile, not a benchmark: the profiler slows the gateway down, so its
 * req/s are not figures to quote (gateway-overhead measures those).
 */
const usage = `usage: npm run bench:profile -- [--seconds N] [--connections N] [--symbols N] [--env NAME=VALUE]… [--keep DIR]

Profiles the production gateway under the gateway-overhead workload and prints where the CPU went.
  --seconds N       measured load (default 6; a 2 s warm-up comes first)
  --connections N   autocannon connections (default 50)
  --symbols N       symbols in the predictions query (default 50, as gateway-overhead)
  --env NAME=VALUE  extra gateway configuration, e.g. --env GRAPHQL_JIT=off (repeatable)
  --keep DIR        copy the .cpuprofile and the summary there (for a flame graph in Chrome DevTools)
  --no-profile      run the same load without the profiler and print only req/s and latency (a quick check
                    while iterating; figures to quote come from \`npm run bench gateway-overhead\`)
`;

async function main(): Promise<number> {
  const parsed = parseCli(
    {
      name: 'bench:profile',
      usage,
      options: {
        seconds: { type: 'string' },
        connections: { type: 'string' },
        symbols: { type: 'string' },
        env: { type: 'string', multiple: true },
        keep: { type: 'string' },
        'no-profile': { type: 'boolean' },
      },
    },
    processIo(),
  );
  if ('exitCode' in parsed) return parsed.exitCode;
  const number = (text: string | undefined, fallback: number, name: string) => {
    const value = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
    return value;
  };
  const seconds = number(parsed.values.seconds, 6, 'seconds');
  const connections = number(parsed.values.connections, 50, 'connections');
  const count = number(parsed.values.symbols, 50, 'symbols');
  const env: Record<string, string> = {};
  for (const pair of parsed.values.env ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--env ${pair}: expected NAME=VALUE`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }

  const profiling = parsed.values['no-profile'] !== true;
  const profiles = tempDir('sibyl-profile-');
  const database = await seededDatabase('profile', benchSymbols(60), 250);
  try {
    const gateway = await startGateway({
      env: { DATABASE_URL: database.url, ...env },
      extraNodeArgs: profiling ? ['--cpu-prof', '--cpu-prof-dir', profiles.dir] : [],
    });
    const request = predictionsRequest(benchSymbols(60).slice(0, count));
    let window: { from: number; to: number };
    let requests: number;
    try {
      expectPredictions(count)((await graphql(gateway.url, request)).raw);
      await closedLoop(gateway.url, request, { connections, seconds: 2 });
      const from = microseconds();
      const cpuBefore = processCpuSeconds(gateway.pid);
      const result = await closedLoop(gateway.url, request, { connections, seconds });
      const cpu = processCpuSeconds(gateway.pid) - cpuBefore;
      window = { from, to: microseconds() };
      requests = result.requests;
      // CPU seconds per request hold up on a busy machine far better than req/s do (a shared 2-core box).
      process.stderr.write(
        `${profiling ? 'profiled' : 'measured'}: ${result.requestsPerSecond.toFixed(0)} req/s${profiling ? ' under the profiler' : ''}, p50 ${result.latency.p50.toFixed(1)} / p99 ${result.latency.p99.toFixed(1)} ms, gateway CPU ${((cpu * 1e6) / result.requests).toFixed(0)} µs per request\n`,
      );
    } finally {
      await gateway.stop();
    }
    if (!profiling) return 0;
    const file = readdirSync(profiles.dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the gateway wrote no .cpuprofile (did it exit cleanly?)');
    const text = formatSummary(summarizeProfile(path.join(profiles.dir, file), window), requests);
    process.stdout.write(`${text}\n`);
    if (parsed.values.keep) {
      copyFileSync(path.join(profiles.dir, file), path.join(parsed.values.keep, 'gateway.cpuprofile'));
      writeFileSync(path.join(parsed.values.keep, 'summary.txt'), `${text}\n`);
    }
    return 0;
  } finally {
    await database.drop();
    profiles.remove();
  }
}

/** User + system CPU time of a process so far (Linux /proc; clock ticks of 1/100 s). */
function processCpuSeconds(pid: number): number {
  // Fields after the command name (which may hold spaces, hence from the last ')'): utime is the 12th, stime the 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The monotonic clock V8's profiler stamps samples with, in microseconds. */
function microseconds(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

process.exitCode = await main().catch(async (error: unknown) => {
  process.stderr.write(`bench:profile: ${(error as Error).message}\n`);
  return 1;
});
await runCleanups();
