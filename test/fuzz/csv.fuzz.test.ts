import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SYMBOL_PATTERN } from '../../src/infra/market-data/market-data.js';
import { parseBarsCsv } from '../../src/infra/market-data/csv.js';

/**
 * Whatever the bytes of a CSV file, the parser answers (never throws), refuses a file only as a whole
 * with a reason, and every bar it keeps satisfies what the bars table and the features assume.
 */
const HEADER = 'Date,Open,High,Low,Close,Adj Close,Volume';
const cell = fc.oneof(
  fc.double({ noNaN: false }).map(String),
  fc.integer({ min: -5, max: 1_000_000 }).map(String),
  fc.constantFrom('', 'null', 'abc', '1e400', '-0', '0x10', ' 1', '"10"', 'NaN', 'Infinity'),
  fc.string({ maxLength: 6 }),
);
const date = fc.oneof(
  fc.date({ min: new Date('1990-01-01'), max: new Date('2030-12-31'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
  fc.constantFrom('2021-02-30', '2021-13-01', '01/02/2021', '', 'x'),
);
const row = fc.tuple(date, fc.array(cell, { minLength: 0, maxLength: 8 })).map(([d, cells]) => [d, ...cells].join(','));
const file = fc.oneof(
  fc.array(row, { maxLength: 30 }).map((rows) => [HEADER, ...rows].join('\n')),
  fc.array(row, { maxLength: 30 }).map((rows) => [HEADER, ...rows].join('\r\n')),
  fc.string({ maxLength: 400 }),
  fc.string({ maxLength: 200 }).map((noise) => `${HEADER}\n${noise}`),
);

describe('CSV import fuzz', () => {
  test('any file: an answer, never a throw; kept bars are valid; rejected rows say where and why', () => {
    fc.assert(
      fc.property(file, fc.constantFrom('AAPL.csv', 'BRK.B.csv', 'DA-MSFT-T-2021-04-21.csv', 'bad name!.csv'), (text, name) => {
        const parsed = parseBarsCsv(text, { file: name });
        if (!parsed.ok) {
          assert.ok(parsed.reason.length > 0);
          return;
        }
        assert.match(parsed.symbol, SYMBOL_PATTERN);
        assert.equal(parsed.bars.length + parsed.rejected.length, parsed.rows);
        const days = new Set<number>();
        for (const bar of parsed.bars) {
          const t = bar.time.getTime();
          assert.ok(Number.isFinite(t) && !days.has(t), 'a valid, unique date');
          days.add(t);
          for (const v of [bar.open, bar.high, bar.low, bar.close, bar.adjClose]) assert.ok(Number.isFinite(v) && v > 0);
          assert.ok(Number.isFinite(bar.volume) && bar.volume >= 0);
          assert.ok(bar.low <= bar.high && bar.open >= bar.low && bar.open <= bar.high && bar.close >= bar.low && bar.close <= bar.high);
        }
        for (const rejected of parsed.rejected) {
          assert.ok(rejected.line >= 2 && rejected.reason.length > 0 && rejected.file === name);
        }
      }),
      { numRuns: 400 },
    );
  });
});
