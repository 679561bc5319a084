import type { Bar } from '../infra/market-data/market-data.js';
import { findStrategy } from '../domain/strategies.js';
import { columnsToBars, type FromWorker, type RetrainJob, type ToWorker } from './retrain-protocol.js';
import { periodsEndingAt } from './train.js';
import { trainVersion, writeVersion } from './version.js';

/**
 * The child process of scheduled retraining (forked by src/modules/retraining/retraining.child.ts, never
 * run by hand): receives a job and its bars over IPC, trains through the same code as `npm run train`
 * with rolling periods ending at the newest bar it was sent (periodsEndingAt), writes the version into the staging directory it was
 * given, says so and exits. Training is one long synchronous computation, so it runs here and not in
 * the gateway: its CPU and memory (bounded by `--max-old-space-size`) are this process's.
 *
 * If the gateway goes away (its IPC channel closes), the next progress step ends the training: no
 * orphan keeps computing a version nobody will register.
 */
function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(message, undefined, {}, () => resolve());
  });
}

class ParentGone extends Error {}

let job: RetrainJob | undefined;
const bars = new Map<string, Bar[]>();

async function train(): Promise<void> {
  if (!job) throw new Error('train before job');
  const strategy = findStrategy(job.strategy);
  if (!strategy) throw new Error(`unknown strategy "${job.strategy}"`);
  if (bars.size === 0) throw new Error('no bars were sent');
  const spec = job;
  const trained = trainVersion({
    strategy,
    version: spec.version,
    family: spec.family,
    createdAt: new Date(spec.createdAt),
    bars,
    source: spec.source,
    periods: periodsEndingAt(newestBar(bars)),
    onStep: (step) => {
      if (!process.connected) throw new ParentGone('the gateway is gone');
      void send({ type: 'step', step });
    },
  });
  await writeVersion(spec.directory, trained);
}

function newestBar(bySymbol: ReadonlyMap<string, readonly Bar[]>): Date {
  let newest = -Infinity;
  for (const list of bySymbol.values()) if (list.length) newest = Math.max(newest, list.at(-1)!.time.getTime());
  return new Date(newest);
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'job') job = message.job;
  else if (message.type === 'bars') bars.set(message.symbol, columnsToBars(message.symbol, message.bars));
  else if (message.type === 'train') {
    train().then(
      async () => {
        await send({ type: 'written' });
        process.exit(0);
      },
      async (error: unknown) => {
        if (!(error instanceof ParentGone)) await send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
        process.exit(1);
      },
    );
  }
});
process.on('disconnect', () => process.exit(1));
