import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SpillDirectory } from '../../../src/modules/history/history.spill.js';
import { HISTORY_FIELDS, historyRowProblem, pickHistoryRow, type HistoryRow } from '../../../src/modules/history/history.types.js';
import { tempDir } from '../../helpers/services.js';

/**
 * The history row's one definition (HISTORY_COLUMNS) and what is derived from it: the writer's copy
 * and the spill files' JSON. The SQL side is tested against a database in test/integration/history.test.ts.
 */
const text = fc.string({ maxLength: 12 }).filter((s) => !s.includes('\u0000'));
// JSON has no -0 (it comes back as 0, numerically the same), so the generator does not make one.
const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map((x) => x + 0);
const unit = fc.double({ noNaN: true, min: 0, max: 1 });
const validRow: fc.Arbitrary<HistoryRow> = fc
  .record({
    time: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms)),
    symbol: text,
    strategy: text,
    modelVersion: text,
    horizon: text,
    probability: unit,
    confidence: unit,
    signal: fc.constantFrom('BUY' as const, 'SELL' as const, 'HOLD' as const),
    expectedReturn: fc.option(finite, { nil: null }),
    intervalLevel: fc.double({ noNaN: true, min: 0.01, max: 0.99 }),
    intervalLow: finite,
    width: fc.double({ noNaN: true, min: 0, max: 1e6 }),
    featuresHash: text,
    marketSource: text.filter((s) => s.length > 0),
  })
  .map(({ width, ...row }) => ({ ...row, intervalHigh: row.intervalLow + width }))
  .filter((row) => historyRowProblem(row) === undefined);

describe('history row', () => {
  test('pickHistoryRow copies exactly the defined fields, with the time it is given', () => {
    fc.assert(
      fc.property(validRow, (row) => {
        const time = new Date(row.time.getTime());
        const copy = pickHistoryRow({ ...row, extra: 'not a column' } as HistoryRow, time);
        assert.deepEqual(Object.keys(copy), [...HISTORY_FIELDS]);
        assert.deepEqual(copy, row);
        assert.equal(copy.time, time);
      }),
    );
  });

  test('property: a spill file gives back exactly the rows written, one JSON line each, fields in column order', async () => {
    const dir = tempDir();
    try {
      const { directory, run } = await SpillDirectory.open(dir.dir);
      let firstSeq = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(validRow, { minLength: 1, maxLength: 20 }), async (rows) => {
          const file = directory.write(run, firstSeq, rows);
          firstSeq += rows.length;
          assert.deepEqual(await directory.read(file), rows);
          const lines = readFileSync(file.path, 'utf8').trimEnd().split('\n');
          assert.equal(lines.length, rows.length);
          const first = JSON.parse(lines[0]!) as Record<string, unknown>;
          assert.deepEqual(Object.keys(first), [...HISTORY_FIELDS]);
          assert.equal(first.time, rows[0]!.time.getTime(), 'times are stored as epoch milliseconds');
          await directory.remove(file);
        }),
        { numRuns: 50 },
      );
    } finally {
      dir.remove();
    }
  });
});
