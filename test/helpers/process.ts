import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { withDeadline } from '../../src/shared/deadline.js';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** How the gateway runs: `compiled` is dist/ as `npm start` runs it, `source` is src/ through tsx (`npm run dev`). */
export type GatewayBuild = 'compiled' | 'source';

/** The compiled entry point, relative to the project root (tsconfig.build.json keeps src/ and db/ side by side in dist/). */
export const COMPILED_ENTRY = 'dist/src/main.js';

/**
 * The arguments `npm start` gives node (package.json's `start` script, e.g. the V8 heap budget), so
 * process tests and benchmarks run the gateway exactly as a user does, from one definition: on the
 * compiled entry as `npm start` does, or on the sources through tsx with the same node options.
 */
export function gatewayNodeArgs(build: GatewayBuild = 'source'): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: { start: string } };
  // `exec` lets npm's SIGTERM reach node itself rather than the shell npm starts the script in.
  const [exec, command, ...args] = scripts.start.trim().split(/\s+/);
  if (exec !== 'exec' || command !== 'node' || args.at(-1) !== COMPILED_ENTRY)
    throw new Error(`package.json's start script is not "exec node … ${COMPILED_ENTRY}": ${scripts.start}`);
  const options = args.slice(0, -1);
  return build === 'compiled' ? [...options, COMPILED_ENTRY] : [...options, '--import', 'tsx', 'src/main.ts'];
}

/**
 * Compiles src/ to dist/ when dist/ is missing or older than its sources (what `npm start` does first),
 * so a compiled run never exercises stale code. Fast (a file-time walk) when dist/ is current.
 */
export function ensureBuilt(): void {
  const result = spawnSync(process.execPath, ['tools/build.mjs', '--if-stale'], { cwd: projectRoot, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed (exit ${result.status}):\n${result.stderr}`);
}

export interface GatewayProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Parsed JSON log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  readonly stderr: () => string;
  /** Resolves with the port once the gateway logs that it listens; rejects if it exits first. */
  readonly ready: Promise<{ port: number; url: string; startupMs: number }>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Runs the gateway with `npm start`'s node arguments, with JSON logs, so tests see the real process: its
 * exit code, its signals, its output. By default from src/ through tsx (the code as it is, no build
 * needed); `build: 'compiled'` runs dist/ (call ensureBuilt() first). With `viaNpm`, runs `npm start`
 * itself (its prestart build step included), so `child` is npm's process, the one a process manager
 * would signal.
 */
export function spawnGateway(
  env: Record<string, string>,
  options: { timeoutMs?: number; viaNpm?: boolean; build?: GatewayBuild; cwd?: string } = {},
): GatewayProcess {
  const [command, args] = options.viaNpm ? ['npm', ['start']] : [process.execPath, gatewayNodeArgs(options.build)];
  const child = spawn(command, args, {
    cwd: options.cwd ?? projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_FORMAT: 'json', PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffered = '';
  const started = Date.now();
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  // Via npm: npm's own exit, then its output read to the end unless a gateway it orphaned holds the
  // pipes open (bounded), which the caller then sees as a port still listening.
  const exited = options.viaNpm
    ? new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => void withDeadline(closed, 2_000).then(() => resolve({ code, signal }))),
      )
    : closed;
  const ready = new Promise<{ port: number; url: string; startupMs: number }>((resolve, reject) => {
    // Generous: this waits for a process, not a figure (start-up time is measured in bench/startup).
    // On timeout the child is killed, or its open pipes would keep the test file from ever exiting.
    const timeoutMs = options.timeoutMs ?? 90_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway not listening after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          entry = { raw: line };
        }
        logs.push(entry);
        if (typeof entry.port === 'number' && String(entry.msg).includes('listening on')) {
          clearTimeout(timer);
          resolve({ port: entry.port, url: `http://127.0.0.1:${entry.port}`, startupMs: Date.now() - started });
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with code ${code} before listening\nstderr: ${stderr}\nlogs: ${JSON.stringify(logs)}`));
    });
  });
  ready.catch(() => undefined); // callers that only await `exited` must not see an unhandled rejection
  return {
    child,
    logs,
    stderr: () => stderr,
    ready,
    exited,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}

/** The pids of a process's children (Linux: /proc), e.g. the node that `npm start` runs. */
export function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}
