import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { BENCH_AUTH_ENV } from './auth.js';
import { registerCleanup, tempDir } from './cleanup.js';
import { ensureBuilt, gatewayNodeArgs, type GatewayBuild } from '../../test/helpers/process.js';
import { projectRoot } from './paths.js';

/**
 * Servers under test run in their own process, never in the benchmark's: a client sharing the server's
 * event loop is admitted one request per loop turn (measured while building the burst test: 200
 * requests over 200 turns in-process, up to 86 in one turn from another process), so it would measure a
 * queue instead of concurrency, and the client's own CPU would be billed to the server.
 *
 * Every server here (the gateway and the baselines) announces readiness the way the gateway does: a
 * JSON log line on stdout whose `msg` contains "listening on" and which carries the `port`.
 */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Milliseconds from spawn() to the "listening on" line reaching us. */
  readonly readyMs: number;
  /** The "listening on" log line itself (the gateway reports its own `startupMs` there). */
  readonly readyLine: Record<string, unknown>;
  /** The last few KB of stdout and stderr, for error messages. */
  output(): string;
  /**
   * SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves once it has exited, with how;
   * undefined when this handle does not own the process (a gateway shared by the runner).
   */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined>;
}

const TAIL_BYTES = 8_192;

export async function startServer(
  name: string,
  script: string,
  env: Record<string, string>,
  /** nodeArgs: node's whole argument list, when it is more than the default `--import tsx <script>`. */
  options: { timeoutMs?: number; nodeArgs?: readonly string[] } = {},
): Promise<ServerProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const started = performance.now();
  // A minimal environment: nothing from the caller's shell (DATABASE_URL, REDIS_URL…) leaks in unnoticed.
  const child = spawn(process.execPath, options.nodeArgs ? [...options.nodeArgs] : ['--import', 'tsx', script], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-TAIL_BYTES);
  };
  // Keep draining both pipes for the whole run: a full pipe would block the server's (synchronous)
  // logger and show up as latency that has nothing to do with the server.
  child.stderr.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    unregister();
    return exited;
  };
  const unregister = registerCleanup(async () => void (await stop(2_000)));

  try {
    const readyLine = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let buffered = '';
      let ready = false;
      const timer = setTimeout(() => reject(new Error(`${name}: not listening after ${timeoutMs} ms\n${tail}`)), timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => {
        keep(chunk);
        if (ready) return;
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          let entry: Record<string, unknown>;
          try {
            entry = JSON.parse(line) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (typeof entry.port === 'number' && String(entry.msg).includes('listening on')) {
            ready = true;
            clearTimeout(timer);
            resolve(entry);
            return;
          }
        }
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${name}: exited (code ${code}, signal ${signal}) before listening\n${tail}`));
      });
    });
    const port = readyLine.port as number;
    return {
      name,
      pid: child.pid!,
      port,
      url: `http://127.0.0.1:${port}`,
      readyMs: performance.now() - started,
      readyLine,
      output: () => tail,
      stop,
    };
  } catch (error) {
    await stop(2_000);
    throw error;
  }
}

export interface GatewayOptions {
  /** Extra configuration (see src/config/config.ts), e.g. DATABASE_URL or cache TTLs. */
  readonly env?: Record<string, string>;
  /** An existing DATA_DIR to reuse; by default a fresh temporary one, removed on stop. */
  readonly dataDir?: string;
  readonly timeoutMs?: number;
  /** Compiled dist/ as `npm start` runs it (default, built first if stale), or src/ through tsx (`npm run dev`). */
  readonly build?: GatewayBuild;
  /** Node options placed before the gateway's own (e.g. `--cpu-prof`, bench/profile.ts). */
  readonly extraNodeArgs?: readonly string[];
}

/**
 * The gateway as `npm start` runs it (the start script's node arguments, on compiled dist/ unless `build`
 * says source), configured as in production: JSON
 * logs at the default level, so the per-request log line is part of what is measured, like in a
 * deployment. DATA_DIR is always a temporary directory so the developer's ./data is never touched.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<ServerProcess> {
  const ownDir = options.dataDir ? undefined : tempDir('sibyl-bench-');
  const env = {
    ...BENCH_AUTH_ENV,
    NODE_ENV: 'production',
    LOG_FORMAT: 'json',
    HOST: '127.0.0.1',
    PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '5000',
    DATA_DIR: options.dataDir ?? ownDir!.dir,
    ...options.env,
  };
  const removeDir = () => ownDir?.remove();
  const build = options.build ?? 'compiled';
  let server: ServerProcess;
  try {
    if (build === 'compiled') ensureBuilt();
    server = await startServer('gateway', 'src/main.ts', env, {
      nodeArgs: [...(options.extraNodeArgs ?? []), ...gatewayNodeArgs(build)],
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  } catch (error) {
    removeDir();
    throw error;
  }
  return {
    ...server,
    async stop(graceMs) {
      const how = await server.stop(graceMs);
      removeDir();
      return how;
    },
  };
}
