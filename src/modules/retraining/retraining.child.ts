import { fork } from 'node:child_process';
import { setPriority } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bar } from '../../infra/market-data/market-data.js';
import { barsToColumns, type FromWorker, type RetrainJob, type ToWorker } from '../../training/retrain-protocol.js';

/**
 * Runs one training in a child process (src/training/retrain-worker.ts) and resolves once the child
 * has written the version and exited. The gateway streams the bars to it symbol by symbol; the child
 * holds them and trains, so the training's CPU, its memory (bounded by `maxMemoryMb`) and a crash are the
 * child's. The child runs at a lower CPU priority (nice 10), so on a busy machine serving goes first.
 *
 * However it ends, the child has exited before this settles: a timeout or an abort kills it (SIGKILL:
 * it holds nothing that needs a clean exit, and a child stuck in a long synchronous step would not see
 * a SIGTERM handler run), a crash is reported with its exit status and the end of its stderr.
 */
export interface ChildTrainingOptions {
  /** V8 heap limit of the child (`--max-old-space-size`). */
  readonly maxMemoryMb: number;
  /** Epoch ms by which the training must be written; the bars' reading counts too. */
  readonly deadline: number;
  /** Aborting kills the child (gateway shutdown); rejects with {@link TrainingCancelled}. */
  readonly signal: AbortSignal;
  /** Each progress step the child reports. */
  readonly onStep?: (step: string) => void;
  /** The child's pid, once spawned. */
  readonly onSpawn?: (pid: number) => void;
}

/** Where and how a training failed; `stage` goes to the audit log. */
export class TrainingFailed extends Error {
  constructor(
    message: string,
    readonly stage: 'bars' | 'training' | 'timeout' | 'crash',
  ) {
    super(message);
    this.name = 'TrainingFailed';
  }
}

export class TrainingCancelled extends Error {
  constructor() {
    super('cancelled: the gateway is shutting down');
    this.name = 'TrainingCancelled';
  }
}

/** The worker beside this file's tree, compiled or not: `.js` under dist/, `.ts` through tsx (`npm run dev`, tests). */
const here = fileURLToPath(import.meta.url);
const extension = path.extname(here);
const WORKER = path.resolve(path.dirname(here), `../../training/retrain-worker${extension}`);
/** Sources need tsx's loader in the child too; the compiled gateway forks plain node. */
const loader = (): string[] => (extension === '.ts' ? ['--import', import.meta.resolve('tsx')] : []);

const STDERR_TAIL = 2_048;

export async function trainInChild(
  job: RetrainJob,
  bars: AsyncIterable<{ readonly symbol: string; readonly bars: readonly Bar[] }>,
  options: ChildTrainingOptions,
): Promise<void> {
  if (options.signal.aborted) throw new TrainingCancelled();
  const child = fork(WORKER, [], {
    execArgv: [...loader(), `--max-old-space-size=${options.maxMemoryMb}`],
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // Nothing of the gateway's environment (database URL, keys, secrets): the child needs none of it.
    env: {},
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL)));
  let stopped: Error | undefined;
  const stop = (reason: Error) => {
    stopped ??= reason;
    child.kill('SIGKILL');
  };
  let result: FromWorker | undefined;
  const exited = new Promise<void>((resolve, reject) => {
    child.on('message', (message: FromWorker) => {
      if (message.type === 'step') options.onStep?.(message.step);
      else result = message;
    });
    child.once('error', (error) => {
      stop(new TrainingFailed(`could not run the training process: ${error.message}`, 'crash'));
      // A process that never started emits no 'exit'.
      if (child.pid === undefined) reject(stopped);
    });
    child.once('exit', (code, signal) => {
      if (stopped) reject(stopped);
      else if (result?.type === 'written' && code === 0) resolve();
      else if (result?.type === 'failed') reject(new TrainingFailed(result.message, 'training'));
      else {
        const tail = stderr.trim().split('\n').slice(-5).join(' | ');
        reject(new TrainingFailed(`the training process exited with ${signal ?? `code ${code}`}${tail ? `: ${tail}` : ''}`, 'crash'));
      }
    });
  });
  exited.catch(() => undefined); // awaited below; a child that dies while bars are sent must not be unhandled
  if (child.pid !== undefined) {
    options.onSpawn?.(child.pid);
    try {
      setPriority(child.pid, 10);
    } catch {
      // Not permitted here (some containers): it runs at the gateway's priority.
    }
  }
  const timer = setTimeout(
    () => stop(new TrainingFailed(`timed out: not written within RETRAIN_TIMEOUT_MS of the run's start`, 'timeout')),
    Math.max(0, options.deadline - Date.now()),
  );
  const abort = () => stop(new TrainingCancelled());
  options.signal.addEventListener('abort', abort);
  try {
    await send(child, { type: 'job', job });
    try {
      for await (const item of bars) {
        if (stopped || !child.connected) break;
        await send(child, { type: 'bars', symbol: item.symbol, bars: barsToColumns(item.bars) });
      }
    } catch (error) {
      if (!stopped) stop(new TrainingFailed(`reading the stored bars failed: ${(error as Error).message}`, 'bars'));
    }
    if (!stopped && child.connected) await send(child, { type: 'train' });
    await exited;
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', abort);
  }
}

/** Sends one message, waiting until it is handed to the channel; a closed channel is left to 'exit'. */
function send(child: ReturnType<typeof fork>, message: ToWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!child.connected) return resolve();
    child.send(message, (error) => {
      void error; // the child died: its exit says why
      resolve();
    });
  });
}
