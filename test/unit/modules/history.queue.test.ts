import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { HistoryQueue, type Batch, type RecordResult } from '../../../src/modules/history/history.queue.js';
import { SpillDirectory } from '../../../src/modules/history/history.spill.js';
import type { HistoryRow } from '../../../src/modules/history/history.types.js';
import { tempDir } from '../../helpers/services.js';

/**
 * The queue on its own, without a flush loop or database: acceptance order across memory and spill
 * files, and a failed batch going back in front. The writer's behaviour as a whole is in history.writer.test.ts.
 */
const T0 = Date.UTC(2021, 3, 21);
const silent = createLogger({ level: 'silent', format: 'json' });

const FIXED = {
  symbol: 'AAPL',
  strategy: 'direction-1d',
  modelVersion: 'v1',
  horizon: '1d',
  signal: 'BUY',
  marketSource: 'stored',
} as const;
const VALUES = { probability: 0.6, confidence: 0.6, expectedReturn: null, intervalLevel: 0.95, intervalLow: 1, intervalHigh: 2 };

/** Row `i`, told apart by its time and its featuresHash `h<i>`. */
function row(i: number): HistoryRow {
  return { ...FIXED, ...VALUES, time: new Date(T0 + i * 60_000), featuresHash: `h${i}` };
}

async function openQueue(dir: string) {
  const { directory, files, run } = await SpillDirectory.open(dir);
  const sizes: number[] = [];
  const settings = { maxBatchRows: 2, maxBufferRows: 4, maxMemoryRows: 16, recentKeys: 100 };
  const queue = new HistoryQueue({ spill: directory, files, run, logger: silent, settings, onBufferSize: (n) => sizes.push(n) });
  return { queue, sizes };
}

function accept(queue: HistoryQueue, rows: HistoryRow[]): RecordResult {
  const result: RecordResult = { accepted: 0, duplicates: 0, invalid: 0, refused: 0 };
  queue.accept(rows, result);
  return result;
}

/** Takes batches until none is left, marking each written; the rows' indexes in the order taken. */
async function drain(queue: HistoryQueue): Promise<number[]> {
  const order: number[] = [];
  for (let batch: Batch | undefined; (batch = queue.takeBatch());) {
    const rows = batch.kind === 'file' ? ((await queue.readFile(batch.file)) ?? []) : batch.items.map((p) => p.row);
    order.push(...rows.map((r) => Number(r.featuresHash.slice(1))));
    if (batch.kind === 'file') await queue.fileWritten(batch.file);
    else queue.memoryWritten();
  }
  return order;
}

describe('HistoryQueue', () => {
  test('rows come out in acceptance order, spill files and memory alike; repeats and invalid rows are counted, not queued', async () => {
    const dir = tempDir();
    try {
      const { queue, sizes } = await openQueue(dir.dir);
      const result = accept(queue, [...Array.from({ length: 7 }, (_, i) => row(i)), row(3), { ...row(99), probability: 2 }]);
      assert.deepEqual(result, { accepted: 7, duplicates: 1, invalid: 1, refused: 0 });
      assert.equal(queue.spillFiles, 1, 'past maxBufferRows the oldest rows went to disk');
      assert.equal(queue.memoryRows() + queue.spilledRows(), 7);
      assert.deepEqual(sizes, [queue.memoryRows()]);
      assert.deepEqual(await drain(queue), [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(queue.spillFiles, 0);
    } finally {
      dir.remove();
    }
  });

  test('a failed batch goes back in front of newer rows; a closed queue refuses and saveAll puts memory on disk', async () => {
    const dir = tempDir();
    try {
      const { queue } = await openQueue(dir.dir);
      accept(queue, [row(0), row(1), row(2)]);
      const first = queue.takeBatch();
      assert.equal(first?.kind, 'memory');
      accept(queue, [row(3)]);
      queue.failed(first!);
      queue.close();
      assert.deepEqual(accept(queue, [row(4)]), { accepted: 0, duplicates: 0, invalid: 0, refused: 1 });
      queue.saveAll();
      assert.equal(queue.memoryRows(), 0);
      assert.equal(queue.spilledRows(), 4);
      const reopened = await openQueue(dir.dir);
      assert.deepEqual(await drain(reopened.queue), [0, 1, 2, 3], 'the next run replays them oldest first');
    } finally {
      dir.remove();
    }
  });
});
