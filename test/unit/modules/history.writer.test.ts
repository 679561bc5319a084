import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { HistoryWriter, retryDelay, type HistoryWriterOptions } from '../../../src/modules/history/history.writer.js';
import { historyKey, type HistoryRow, type HistorySink } from '../../../src/modules/history/history.types.js';
import { tempDir } from '../../helpers/services.js';

/**
 * The writer's buffering, spilling and retrying, against a stand-in for the repository that fails and
 * recovers on command. The stand-in keeps the table's one rule that the writer relies on: a key is
 * stored once, and inserting it again is a no-op. The SQL itself is tested in
 * test/integration/history.test.ts.
 */
type Failure = 'before-commit' | 'after-commit';

class FakeRepository implements HistorySink {
  readonly table = new Map<string, HistoryRow>();
  /** Rows per call, and when. */
  readonly calls: Array<{ rows: number; at: number }> = [];
  /** Per key: how many times it was sent again after it was committed. */
  readonly resentAfterCommit = new Map<string, number>();
  /** Consumed one per call before `down` is looked at. */
  script: Array<Failure | 'ok'> = [];
  down = false;
  /** While set, calls wait on it (a hung connection). */
  gate: Promise<void> | undefined;
  /** Rows with this featuresHash make the whole call fail with a CHECK violation, as PostgreSQL would. */
  poison = 'poison';
  active = 0;
  maxActive = 0;
  onCall: (() => void) | undefined;
  /** How long a call takes before it answers. */
  latency: () => Promise<void> | undefined = () => Promise.resolve();

  async insertMany(rows: readonly HistoryRow[]): Promise<number> {
    this.calls.push({ rows: rows.length, at: performance.now() });
    this.onCall?.();
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.latency();
      if (this.gate) await this.gate;
      const mode = this.script.shift() ?? (this.down ? 'before-commit' : 'ok');
      if (mode === 'before-commit') throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      if (rows.some((row) => row.featuresHash === this.poison)) {
        throw Object.assign(new Error('new row violates check constraint "prediction_history_probability_unit"'), { code: '23514' });
      }
      let inserted = 0;
      for (const row of rows) {
        const key = historyKey(row);
        if (this.table.has(key)) this.resentAfterCommit.set(key, (this.resentAfterCommit.get(key) ?? 0) + 1);
        else {
          this.table.set(key, row);
          inserted++;
        }
      }
      if (mode === 'after-commit') throw new Error('Connection terminated unexpectedly');
      return inserted;
    } finally {
      this.active--;
    }
  }
}

const T0 = Date.UTC(2021, 3, 21);

/** A valid row whose values identify `i` (and `variant`, to tell repeats of one key apart). */
function row(i: number, variant = 0, overrides: Partial<HistoryRow> = {}): HistoryRow {
  return {
    time: new Date(T0 + i * 86_400_000),
    symbol: ['AAPL', 'MSFT', 'BRK.B'][i % 3]!,
    strategy: 'direction-1d',
    modelVersion: 'v1',
    horizon: '1d',
    probability: (i % 100) / 100,
    confidence: 0.5 + (i % 50) / 100,
    signal: (['BUY', 'SELL', 'HOLD'] as const)[i % 3]!,
    expectedReturn: i % 2 === 0 ? null : i / 1000,
    intervalLevel: 0.95,
    intervalLow: 100 + i,
    intervalHigh: 110 + i + variant,
    featuresHash: `hash-${i}-${variant}`,
    marketSource: 'stored',
    ...overrides,
  };
}

function capturedLogger() {
  const logs: Array<{ level: number; msg: string } & Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
  });
  return { logger, logs, messages: (pattern: RegExp) => logs.filter((l) => pattern.test(l.msg)) };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function spillFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^spill-.*\.ndjson$/.test(name))
    .sort();
}

function rowsInFiles(dir: string): Array<Record<string, unknown>> {
  return spillFiles(dir).flatMap((name) =>
    readFileSync(path.join(dir, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  );
}

async function setup(options: Partial<HistoryWriterOptions> = {}, dir = tempDir('sibyl-history-')) {
  const repository = new FakeRepository();
  const { logger, logs, messages } = capturedLogger();
  const written: number[] = [];
  const bufferSizes: number[] = [];
  const writer = await HistoryWriter.open({
    repository,
    logger,
    spillDir: dir.dir,
    flushIntervalMs: 5,
    retryBaseMs: 2,
    retryMaxMs: 10,
    onRowsWritten: (n) => written.push(n),
    onBufferSize: (n) => bufferSizes.push(n),
    ...options,
  });
  return { repository, writer, logs, messages, written, bufferSizes, dir };
}

describe('HistoryWriter', { timeout: 30_000 }, () => {
  test('record() only touches memory; a background loop writes batches of at most maxBatchRows', async () => {
    const { repository, writer, written, bufferSizes, dir } = await setup({ maxBatchRows: 3 });
    try {
      const result = writer.record([0, 1, 2, 3, 4, 5, 6].map((i) => row(i)));
      assert.deepEqual(result, { accepted: 7, duplicates: 0, invalid: 0, refused: 0 });
      assert.equal(repository.calls.length, 0, 'nothing is written synchronously');
      assert.equal(writer.state.bufferedRows, 7);
      await until(() => repository.table.size === 7, 'all rows written');
      assert.ok(
        repository.calls.every((c) => c.rows <= 3),
        JSON.stringify(repository.calls),
      );
      assert.equal(repository.maxActive, 1, 'at most one write at a time');
      await until(() => written.reduce((a, b) => a + b, 0) === 7, 'onRowsWritten to add up');
      assert.equal(bufferSizes.at(-1), 0);
      assert.deepEqual(repository.table.get(historyKey(row(4))), row(4));
      assert.deepEqual(writer.health(), { status: 'ok', detail: '0 rows in memory' });
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('repeats of a recently accepted key are dropped; invalid rows are counted and logged, never thrown', async () => {
    const { repository, writer, messages, dir } = await setup();
    try {
      assert.deepEqual(writer.record([row(1), row(1, 9), row(2)]), { accepted: 2, duplicates: 1, invalid: 0, refused: 0 });
      assert.deepEqual(writer.record([row(1)]), { accepted: 0, duplicates: 1, invalid: 0, refused: 0 });
      const bad = [
        row(3, 0, { probability: 1.5 }),
        row(4, 0, { signal: 'MAYBE' as never }),
        row(5, 0, { confidence: Number.NaN }),
        row(6, 0, { time: new Date(Number.NaN) }),
        row(7, 0, { intervalLow: 5, intervalHigh: 4 }),
        null as unknown as HistoryRow,
      ];
      assert.deepEqual(writer.record(bad), { accepted: 0, duplicates: 0, invalid: 6, refused: 0 });
      assert.doesNotThrow(() => writer.record(undefined as unknown as HistoryRow[]));
      await writer.flush();
      assert.deepEqual([...repository.table.values()], [row(1), row(2)], 'the first of the repeated rows is kept');
      assert.equal(messages(/invalid history rows dropped/).length, 1, 'invalid rows are logged at most once a minute');
      assert.equal(writer.state.invalidRows, 6);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('rows survive a failing repository and are written on recovery; the outage is logged once and reported', async () => {
    const { repository, writer, messages, dir } = await setup();
    try {
      repository.down = true;
      writer.record([1, 2, 3, 4, 5].map((i) => row(i)));
      await until(() => repository.calls.length >= 4, 'several failed attempts');
      assert.equal(writer.state.status, 'degraded');
      assert.equal(writer.state.bufferedRows, 5);
      assert.match(writer.health().detail, /writes failing since .* ECONNREFUSED.*; 5 rows in memory/);
      writer.record([6, 7].map((i) => row(i))); // accepted during the outage too
      repository.down = false;
      await until(() => repository.table.size === 7, 'rows written after recovery');
      assert.equal(writer.state.status, 'ok');
      assert.equal(writer.state.bufferedRows, 0);
      assert.equal(messages(/history writes are failing/).length, 1, 'one error line per outage');
      assert.equal(messages(/history writes recovered/).length, 1);
      assert.deepEqual(
        [...repository.table.values()].map((r) => r.featuresHash),
        [1, 2, 3, 4, 5, 6, 7].map((i) => `hash-${i}-0`),
      );
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('past maxBufferRows the oldest rows go to spill files, and a new writer on the same spillDir replays them', async () => {
    const first = await setup({ maxBufferRows: 10, maxBatchRows: 5 });
    const { dir } = first;
    try {
      first.repository.down = true;
      for (let i = 0; i < 25; i++) {
        first.writer.record([row(i)]);
        assert.ok(first.writer.state.bufferedRows <= 10, 'memory stays within the bound');
        if (i % 5 === 0) await sleep(1); // let failed attempts happen in between
      }
      const files = spillFiles(dir.dir);
      assert.ok(files.length >= 2, `spill files: ${files.join(', ')}`);
      const state = first.writer.state;
      assert.equal(state.spilledRows + state.bufferedRows, 25);
      // Files hold older rows than memory, in acceptance order (a batch that was being written when a
      // spill happened is older still, and back in memory).
      const index = (r: Record<string, unknown>) => Number(String(r.featuresHash).split('-')[1]);
      const onDisk = rowsInFiles(dir.dir).map(index);
      assert.deepEqual(
        onDisk,
        [...onDisk].sort((a, b) => a - b),
      );

      await first.writer.close(); // still down: the rest is saved too
      assert.equal(first.repository.table.size, 0);
      // Read in file-name order, the files now hold every row in the order recorded, values intact.
      const saved = rowsInFiles(dir.dir);
      assert.deepEqual(
        saved.map(index),
        Array.from({ length: 25 }, (_, i) => i),
      );
      assert.deepEqual(saved[3], { ...row(3), time: row(3).time.getTime() });

      const second = await setup({}, dir);
      assert.equal(second.writer.state.spilledRows, 25, 'picked up at open');
      assert.equal(await second.writer.flush(), true);
      assert.deepEqual(
        [...second.repository.table.values()],
        Array.from({ length: 25 }, (_, i) => row(i)),
        'oldest first, values intact',
      );
      assert.deepEqual(spillFiles(dir.dir), [], 'files are deleted once their rows are committed');
      assert.equal(
        second.written.reduce((a, b) => a + b, 0),
        25,
      );
      await second.writer.close();
    } finally {
      dir.remove();
    }
  });

  /**
   * The ordering the writer's sequence numbers exist for. A batch is being written (k0) when newer rows
   * overflow the buffer and are spilled (file F1: k0 again, k2); then the batch fails and returns to
   * memory, ahead of rows newer than F1 (k2 again). Written in acceptance order, the first recording of
   * each key wins — whether the failed batch is written from memory, or is itself spilled first.
   */
  for (const spillAgain of [false, true]) {
    test(`a failed batch stays ahead of rows spilled while it was in flight (${spillAgain ? 'then spilled itself' : 'written from memory'})`, async () => {
      const { repository, writer, dir } = await setup({
        maxBatchRows: 3,
        maxBufferRows: 4,
        recentKeys: 0,
        flushIntervalMs: 60_000,
        retryBaseMs: 60_000,
        retryMaxMs: 60_000,
      });
      try {
        let release!: () => void;
        repository.gate = new Promise((resolve) => (release = resolve));
        repository.script = ['before-commit'];
        writer.record([row(0)]);
        const failing = writer.flush(); // the batch [k0] waits at the gate
        await until(() => repository.calls.length === 1, 'the first write to start');
        writer.record([row(0, 1), row(1), row(2), row(3)]); // over the bound: the three oldest in memory go to a file
        assert.equal(spillFiles(dir.dir).length, 1);
        writer.record([row(2, 1)]);
        repository.gate = undefined;
        release();
        assert.equal(await failing, false);
        assert.equal(writer.state.bufferedRows, 3); // k0 back in front, then k3 and k2 again
        if (spillAgain) {
          writer.record([row(4), row(5)]); // over the bound again: the failed batch, then the rest, go to disk
          assert.equal(spillFiles(dir.dir).length, 3);
        }
        repository.down = false;
        assert.equal(await writer.flush(), true);
        assert.deepEqual(repository.table.get(historyKey(row(0))), row(0), 'the first recording of k0 wins');
        assert.deepEqual(repository.table.get(historyKey(row(2))), row(2), 'the first recording of k2 wins');
        assert.equal(repository.table.size, spillAgain ? 6 : 4);
      } finally {
        await writer.close();
        dir.remove();
      }
    });
  }

  test('files left by several earlier runs replay in run order, before rows of the current run', async () => {
    const dir = tempDir('sibyl-history-');
    try {
      // Run 1 and run 2 each record k0 (a new run forgets recent keys) and close during an outage.
      for (const variant of [0, 1]) {
        const run = await setup({ flushIntervalMs: 60_000 }, dir);
        run.repository.down = true;
        run.writer.record([row(0, variant), row(variant + 1)]);
        await run.writer.close();
      }
      assert.equal(spillFiles(dir.dir).length, 2);
      // Run 3 records k0 once more (seq 0, as in the files) before the first write happens.
      const third = await setup({ flushIntervalMs: 60_000 }, dir);
      third.writer.record([row(0, 2)]);
      assert.equal(await third.writer.flush(), true);
      assert.deepEqual(third.repository.table.get(historyKey(row(0))), row(0));
      assert.deepEqual(
        [...third.repository.table.keys()],
        [0, 1, 2].map((i) => historyKey(row(i))),
      );
      await third.writer.close();
    } finally {
      dir.remove();
    }
  });

  test('one record() call far larger than the memory limit spills as it goes and refuses nothing', async () => {
    const { repository, writer, dir } = await setup({ maxBufferRows: 10, maxBatchRows: 5, maxMemoryRows: 20, flushIntervalMs: 60_000 });
    try {
      repository.down = true;
      assert.deepEqual(writer.record(Array.from({ length: 100 }, (_, i) => row(i))), {
        accepted: 100,
        duplicates: 0,
        invalid: 0,
        refused: 0,
      });
      assert.ok(writer.state.bufferedRows <= 10);
      assert.equal(writer.state.spilledRows + writer.state.bufferedRows, 100);
      repository.down = false;
      assert.equal(await writer.flush(), true);
      assert.equal(repository.table.size, 100);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('close() during an outage saves everything to disk and resolves; afterwards record() refuses', async () => {
    const { repository, writer, messages, dir } = await setup({ flushIntervalMs: 60_000 });
    try {
      repository.down = true;
      writer.record([1, 2, 3].map((i) => row(i)));
      const started = Date.now();
      await writer.close();
      assert.ok(Date.now() - started < 1_000);
      assert.deepEqual(
        rowsInFiles(dir.dir).map((r) => r.featuresHash),
        ['hash-1-0', 'hash-2-0', 'hash-3-0'],
      );
      assert.equal(messages(/unwritten rows saved to disk/).length, 1);
      assert.deepEqual(writer.record([row(4)]), { accepted: 0, duplicates: 0, invalid: 0, refused: 1 });
      assert.equal(writer.close(), writer.close(), 'close() is idempotent');
    } finally {
      dir.remove();
    }
  });

  test('close() with a write hung past closeTimeoutMs still saves every row, the hung batch included', async () => {
    const { repository, writer, dir } = await setup({ maxBatchRows: 2, closeTimeoutMs: 150, writeTimeoutMs: 60_000 });
    try {
      repository.gate = new Promise(() => undefined); // never answers
      writer.record([1, 2, 3, 4, 5].map((i) => row(i)));
      await until(() => repository.calls.length === 1, 'a write to start');
      const started = Date.now();
      await writer.close();
      const took = Date.now() - started;
      assert.ok(took >= 140 && took < 1_000, `close took ${took} ms`);
      assert.deepEqual(
        rowsInFiles(dir.dir).map((r) => r.featuresHash),
        [1, 2, 3, 4, 5].map((i) => `hash-${i}-0`),
      );
    } finally {
      dir.remove();
    }
  });

  test('a write that does not answer within writeTimeoutMs is retried', async () => {
    const { repository, writer, dir } = await setup({ writeTimeoutMs: 30 });
    try {
      let release!: () => void;
      repository.gate = new Promise((resolve) => (release = resolve));
      writer.record([row(1)]);
      await until(() => writer.state.consecutiveFailures >= 1, 'the timeout to count as a failure');
      assert.match(writer.state.lastError ?? '', /did not answer within 30 ms/);
      repository.gate = undefined;
      release(); // the abandoned write commits late; the retry is then a no-op
      await until(() => writer.state.status === 'ok' && writer.state.bufferedRows === 0, 'recovery');
      assert.deepEqual([...repository.table.values()], [row(1)]);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('a row the database refuses as invalid is set aside in rejected.ndjson instead of blocking the others', async () => {
    const { repository, writer, messages, dir } = await setup();
    try {
      writer.record([row(1), row(2, 0, { featuresHash: 'poison' }), row(3)]);
      await until(() => repository.table.size === 2 && writer.state.bufferedRows === 0, 'the good rows');
      assert.deepEqual([...repository.table.keys()], [historyKey(row(1)), historyKey(row(3))]);
      assert.equal(writer.state.rejectedRows, 1);
      assert.equal(writer.state.status, 'ok');
      const rejected = readFileSync(path.join(dir.dir, 'rejected.ndjson'), 'utf8').trim().split('\n');
      assert.equal(rejected.length, 1);
      assert.match(rejected[0]!, /"featuresHash":"poison"/);
      assert.match(rejected[0]!, /violates check constraint/);
      assert.equal(messages(/set aside$/).length, 1);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('record() never throws when the spill directory becomes unusable: rows stay in memory up to maxMemoryRows, then are refused', async () => {
    const { repository, writer, messages, dir } = await setup({ maxBufferRows: 4, maxBatchRows: 2, maxMemoryRows: 12 });
    try {
      repository.down = true;
      // Root ignores permissions, so make the directory unusable for anyone: a file where it should be.
      rmSync(dir.dir, { recursive: true, force: true });
      writeFileSync(dir.dir, 'not a directory');
      const results = Array.from({ length: 20 }, (_, i) => writer.record([row(i)]));
      assert.equal(
        results.reduce((n, r) => n + r.accepted, 0),
        12,
      );
      assert.equal(
        results.reduce((n, r) => n + r.refused, 0),
        8,
      );
      assert.equal(writer.state.bufferedRows, 12);
      assert.equal(writer.state.status, 'degraded');
      assert.ok(writer.state.spillError, 'the spill error is reported');
      assert.match(writer.health().detail, /spilling to .* fails/);
      assert.equal(messages(/cannot be spilled to disk/).length, 1, 'logged once, not per row');

      // Both recover: the accepted rows are written; the refused ones were not remembered, so serving them again records them.
      rmSync(dir.dir, { force: true });
      mkdirSync(dir.dir);
      repository.down = false;
      assert.equal(await writer.flush(), true);
      assert.equal(repository.table.size, 12);
      assert.equal(writer.state.status, 'ok');
      assert.equal(writer.record([row(19)]).accepted, 1);
      await writer.flush();
      assert.equal(repository.table.size, 13);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('retries back off, doubling from retryBaseMs, and never wait longer than retryMaxMs', async () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(n, 500, 30_000)),
      [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000],
    );
    assert.equal(retryDelay(5_000, 500, 30_000), 30_000, 'no overflow to Infinity after many failures');

    const { repository, writer, dir } = await setup({ retryBaseMs: 2, retryMaxMs: 16, flushIntervalMs: 0 });
    try {
      repository.down = true;
      const delays: Array<number | undefined> = [];
      repository.onCall = () => delays.push(writer.state.retryDelayMs);
      writer.record([row(1)]);
      await until(() => repository.calls.length >= 10, '10 attempts');
      assert.deepEqual(delays.slice(0, 8), [undefined, 2, 4, 8, 16, 16, 16, 16]);
      // Loosely timed as well: uncapped, attempts 5→10 would be 32+64+128+256+512 ms apart.
      const gaps = repository.calls.slice(5, 10).map((c, i) => c.at - repository.calls[4 + i]!.at);
      assert.ok(Math.max(...gaps) < 200, `gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);
    } finally {
      await writer.close();
      dir.remove();
    }
  });

  test('a row spilled before rows carried their market is written as market "unknown", not set aside', async () => {
    const dir = tempDir('sibyl-history-');
    try {
      const { marketSource: _dropped, ...old } = { ...row(3), time: row(3).time.getTime() };
      writeFileSync(path.join(dir.dir, 'spill-000001-000000000000-1.ndjson'), JSON.stringify(old) + '\n');
      const { repository, writer } = await setup({}, dir);
      assert.equal(await writer.flush(), true);
      assert.deepEqual([...repository.table.values()], [{ ...row(3), marketSource: 'unknown' }]);
      assert.ok(!readdirSync(dir.dir).includes('rejected.ndjson'));
      await writer.close();
    } finally {
      dir.remove();
    }
  });

  test('open(): leftover temp files are removed, corrupt spill files are moved aside, bad options are named', async () => {
    const dir = tempDir('sibyl-history-');
    try {
      writeFileSync(path.join(dir.dir, '.tmp-spill-000001-000000000000-1.ndjson'), '{"half":');
      writeFileSync(path.join(dir.dir, 'spill-000001-000000000000-2.ndjson'), 'garbage\n');
      writeFileSync(
        path.join(dir.dir, 'spill-000001-000000000002-1.ndjson'),
        JSON.stringify({ ...row(7), time: row(7).time.getTime() }) + '\n',
      );
      const { repository, writer, messages } = await setup({}, dir);
      assert.equal(await writer.flush(), true);
      assert.deepEqual([...repository.table.values()], [row(7)]);
      assert.deepEqual(readdirSync(dir.dir).sort(), ['spill-000001-000000000000-2.ndjson.corrupt']);
      assert.equal(messages(/corrupt/).length, 1);
      await writer.close();

      await assert.rejects(
        HistoryWriter.open({
          repository,
          logger: createLogger({ level: 'silent', format: 'json' }),
          spillDir: dir.dir,
          maxBatchRows: 50,
          maxBufferRows: 10,
        }),
        /maxBatchRows \(50\) must not exceed maxBufferRows \(10\)/,
      );
      await assert.rejects(
        HistoryWriter.open({
          repository,
          logger: createLogger({ level: 'silent', format: 'json' }),
          spillDir: path.join(dir.dir, 'spill-000001-000000000000-2.ndjson.corrupt', 'x'),
        }),
        /history spill directory .* is not usable/,
      );
    } finally {
      dir.remove();
    }
  });

  /**
   * The claim as a property: whatever the interleaving of recordings, slow or failed writes (before or
   * after commit), outages and restarts, every key recorded ends up in the table exactly once with the
   * values of its first recording, nothing is left on disk, and — when no write failed after
   * committing — no row was sent again after it was committed unless it was recorded again after its
   * key left the recent set (or across a restart, which forgets the set). Few keys and a small recent
   * set make re-recordings common, so a batch or file written out of order would change a value.
   */
  test('property: across random outages and restarts nothing accepted is lost or written twice', async () => {
    type Command =
      | { kind: 'record'; key: number; variant: number; then: 'go-on' | 'yield' | 'sleep' }
      | { kind: 'down' }
      | { kind: 'up' }
      | { kind: 'fail'; failures: Failure[] }
      | { kind: 'restart' };
    const command: fc.Arbitrary<Command> = fc.oneof(
      {
        weight: 12,
        arbitrary: fc.record({
          kind: fc.constant('record' as const),
          key: fc.integer({ min: 0, max: 5 }),
          variant: fc.integer({ min: 0, max: 3 }),
          then: fc.constantFrom('go-on' as const, 'go-on' as const, 'yield' as const, 'sleep' as const),
        }),
      },
      { weight: 2, arbitrary: fc.constant({ kind: 'down' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'up' as const }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('fail' as const),
          failures: fc.array(fc.constantFrom<Failure>('before-commit', 'after-commit'), { maxLength: 3 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
    );
    const settings = fc.record({
      maxBatchRows: fc.integer({ min: 1, max: 3 }),
      maxBufferRows: fc.integer({ min: 3, max: 6 }),
      recentKeys: fc.integer({ min: 0, max: 4 }),
      latency: fc.constantFrom('none' as const, 'yield' as const, 'sleep' as const),
    });
    const pause = (how: 'none' | 'go-on' | 'yield' | 'sleep') =>
      how === 'yield' ? new Promise<void>((resolve) => setImmediate(resolve)) : how === 'sleep' ? sleep(1) : undefined;

    await fc.assert(
      fc.asyncProperty(
        fc.array(command, { maxLength: 60 }),
        settings,
        fc.boolean(),
        async (commands, { latency, ...options }, closeAtEnd) => {
          const dir = tempDir('sibyl-history-prop-');
          const repository = new FakeRepository();
          repository.latency = () => pause(latency);
          const logger = createLogger({ level: 'silent', format: 'json' });
          const open = () =>
            HistoryWriter.open({
              repository,
              logger,
              spillDir: dir.dir,
              flushIntervalMs: 1,
              retryBaseMs: 1,
              retryMaxMs: 2,
              closeTimeoutMs: 2_000,
              ...options,
            });
          const first = new Map<string, HistoryRow>(); // the first recording of each key
          const accepted = new Map<string, number>(); // how many times each key was accepted
          let committedThenFailed = false;
          try {
            let writer = await open();
            for (const c of commands) {
              if (c.kind === 'record') {
                const r = row(c.key, c.variant);
                const key = historyKey(r);
                if (!first.has(key)) first.set(key, r);
                const result = writer.record([r]);
                assert.equal(result.accepted + result.duplicates, 1);
                if (result.accepted) accepted.set(key, (accepted.get(key) ?? 0) + 1);
                await pause(c.then);
              } else if (c.kind === 'down') repository.down = true;
              else if (c.kind === 'up') repository.down = false;
              else if (c.kind === 'fail') {
                repository.script.push(...c.failures);
                if (c.failures.includes('after-commit')) committedThenFailed = true;
              } else {
                await writer.close();
                writer = await open();
              }
            }
            if (closeAtEnd) {
              await writer.close(); // while the repository may still be down: everything goes to disk
              writer = await open();
            }
            // Recovery, on the same writer or a new one: everything pending drains, nothing is stuck.
            repository.down = false;
            repository.script = [];
            assert.equal(await writer.flush(), true);
            assert.equal(writer.state.bufferedRows + writer.state.spilledRows, 0);
            await writer.close();

            assert.deepEqual(
              new Map([...repository.table].sort()),
              new Map([...first].sort()),
              'the table holds every key once, first values',
            );
            assert.deepEqual(spillFiles(dir.dir), []);
            assert.ok(repository.maxActive <= 1, 'one write at a time');
            if (!committedThenFailed) {
              for (const [key, resent] of repository.resentAfterCommit) {
                assert.ok(
                  resent <= (accepted.get(key) ?? 0) - 1,
                  `${JSON.stringify(key)} resent ${resent} times, accepted ${accepted.get(key)}`,
                );
              }
            }
          } finally {
            dir.remove();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
