import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBarsCsv, symbolFromFileName, type ParsedBarsFile } from '../../../src/infra/market-data/csv.js';

const AV_HEADER = 'timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient';
const YAHOO_HEADER = 'Date,Open,High,Low,Close,Adj Close,Volume';

function parsed(result: ParsedBarsFile) {
  assert.ok(result.ok, `expected the file to parse, got: ${result.ok ? '' : result.reason}`);
  return result;
}

describe('parseBarsCsv', () => {
  test('reads Alpha Vantage daily adjusted rows as they are in the real files', () => {
    const text = `${AV_HEADER}\n1999-11-01,80.0,80.69,77.37,77.62,0.596878742448,2487300,0.0,1.0\n2021-04-21,132.0,134.0,131.3,133.5,133.5,68847136,0.0,1.0\n`;
    const result = parsed(parseBarsCsv(text, { file: 'daily_adjusted/DA-AAPL-T-2021-04-21.csv' }));
    assert.equal(result.format, 'alphavantage');
    assert.equal(result.symbol, 'AAPL');
    assert.equal(result.rows, 2);
    assert.deepEqual(result.rejected, []);
    assert.deepEqual(result.bars[0], {
      symbol: 'AAPL',
      source: 'alphavantage',
      time: new Date('1999-11-01T00:00:00Z'),
      open: 80,
      high: 80.69,
      low: 77.37,
      close: 77.62,
      adjClose: 0.596878742448,
      volume: 2487300,
      quality: [],
    });
    assert.deepEqual(result.bars[1]?.time, new Date('2021-04-21T00:00:00Z'));
  });

  test('reads Yahoo rows, with CRLF line endings and a byte-order mark', () => {
    const text = `\ufeff${YAHOO_HEADER}\r\n2021-01-04,133.52,133.61,126.76,129.41,128.62,143301900\r\n`;
    const result = parsed(parseBarsCsv(text, { file: '/data/yahoo/AAPL.csv' }));
    assert.equal(result.format, 'yahoo');
    assert.equal(result.symbol, 'AAPL');
    assert.deepEqual(result.bars, [
      {
        symbol: 'AAPL',
        source: 'yahoo',
        time: new Date('2021-01-04T00:00:00Z'),
        open: 133.52,
        high: 133.61,
        low: 126.76,
        close: 129.41,
        adjClose: 128.62,
        volume: 143301900,
        quality: [],
      },
    ]);
  });

  test('takes the symbol from the file name, or from an explicit override', () => {
    assert.equal(symbolFromFileName('DA-BRK.B-T-2021-04-21.csv'), 'BRK.B');
    assert.equal(symbolFromFileName('/x/daily_adjusted/DA-T-T-2021-04-21.csv'), 'T');
    assert.equal(symbolFromFileName('BRK-B.csv'), 'BRK-B');
    assert.equal(symbolFromFileName('MSFT.CSV'), 'MSFT');
    const text = `${YAHOO_HEADER}\n2021-01-04,1,2,1,2,2,10\n`;
    assert.equal(parsed(parseBarsCsv(text, { file: 'DA-BRK.B-T-2021-04-21.csv' })).symbol, 'BRK.B');
    const overridden = parsed(parseBarsCsv(text, { file: 'download (3).csv', symbol: 'NVDA' }));
    assert.equal(overridden.symbol, 'NVDA');
    assert.equal(overridden.bars[0]?.symbol, 'NVDA');
  });

  test('refuses a file whose symbol is not a ticker, saying where the symbol came from', () => {
    const text = `${YAHOO_HEADER}\n2021-01-04,1,2,1,2,2,10\n`;
    const fromName = parseBarsCsv(text, { file: 'download (3).csv' });
    assert.equal(fromName.ok, false);
    assert.match(fromName.ok ? '' : fromName.reason, /"download \(3\)" taken from the file name is not a ticker.*<SYMBOL>\.csv/);
    const given = parseBarsCsv(text, { file: 'AAPL.csv', symbol: 'aapl' });
    assert.match(given.ok ? '' : given.reason, /"aapl" given is not a ticker/);
  });

  test('refuses a file with an unknown header whole, naming both expected headers', () => {
    for (const text of ['{\n  "Error Message": "Invalid API call."\n}\n', 'date,open,high,low,close\n2021-01-04,1,2,1,2\n']) {
      const result = parseBarsCsv(text, { file: 'DA-BF.B-T-2021-04-21.csv' });
      assert.equal(result.ok, false);
      const reason = result.ok ? '' : result.reason;
      assert.match(reason, /^unknown header/);
      assert.ok(reason.includes(AV_HEADER) && reason.includes(YAHOO_HEADER), reason);
    }
    assert.deepEqual(parseBarsCsv('', { file: 'AAPL.csv' }), { ok: false, reason: 'empty file: no header line' });
  });

  test('rejects each bad row with its line number and reason, and keeps every good row', () => {
    const lines = [
      YAHOO_HEADER, //                                       line 1
      '2021-01-04,10,11,9,10.5,10.4,1000', //                 2 good
      '2021-01-05,null,null,null,null,null,null', //          3 Yahoo's missing day
      '2021-13-01,10,11,9,10,10,1', //                        4 no such month
      '04/01/2021,10,11,9,10,10,1', //                        5 wrong date format
      '2021-02-30,10,11,9,10,10,1', //                        6 no such day
      '2021-01-06,abc,11,9,10,10,1', //                       7 non-numeric
      '2021-01-07,10,11,9,0,10,1', //                         8 non-positive close
      '2021-01-08,10,11,9,10,-1,1', //                        9 negative adjusted close
      '2021-01-11,10,9,11,10,10,1', //                       10 low above high
      '2021-01-12,12,11,9,10,10,1', //                       11 open above high
      '2021-01-13,10,11,9,8,10,1', //                        12 close below low
      '2021-01-14,10,11,9,10,10,-5', //                      13 negative volume
      '2021-01-04,10,11,9,10,10,1', //                       14 duplicate of line 2
      '2021-01-15,10,11,9,10', //                            15 too few columns
      '2021-01-19,10,11,9,10,10,1,7', //                     16 too many columns
      '2021-01-20,10,11,9,"10",10,1', //                     17 quoted: not a number, and the file goes on
      '', //                                                 18 blank: skipped, not a row
      '2021-01-21,10,11,9,10,10,0', //                       19 good: zero volume is allowed
      '2021-01-22,1e400,11,9,10,10,1', //                    20 overflows to Infinity
    ];
    const result = parsed(parseBarsCsv(`${lines.join('\n')}\n`, { file: 'TEST.csv' }));
    assert.deepEqual(
      result.rejected.map((r) => [r.line, r.reason]),
      [
        [3, '"null" values (Yahoo writes these for days without prices)'],
        [4, 'unparseable date "2021-13-01" (expected YYYY-MM-DD)'],
        [5, 'unparseable date "04/01/2021" (expected YYYY-MM-DD)'],
        [6, 'unparseable date "2021-02-30" (expected YYYY-MM-DD)'],
        [7, 'Open is not a number ("abc")'],
        [8, 'Close must be positive (got 0)'],
        [9, 'Adj Close must be positive (got -1)'],
        [10, 'low 11 is above high 9'],
        [11, 'open 12 is outside [low 9, high 11]'],
        [12, 'close 8 is outside [low 9, high 11]'],
        [13, 'Volume must not be negative (got -5)'],
        [14, 'duplicate date 2021-01-04 (first on line 2)'],
        [15, 'expected 7 columns, found 5'],
        [16, 'expected 7 columns, found 8'],
        [17, 'Close is not a number ("\\"10\\"")'],
        [20, 'Open is not a number ("1e400")'],
      ],
    );
    assert.ok(result.rejected.every((r) => r.file === 'TEST.csv'));
    assert.deepEqual(
      result.bars.map((b) => b.time.toISOString().slice(0, 10)),
      ['2021-01-04', '2021-01-21'],
    );
    assert.equal(result.rows, 18);
  });

  test('names columns as the file does (Alpha Vantage lower case)', () => {
    const text = `${AV_HEADER}\n2021-01-04,10,11,9,10,x,1,0.0,1.0\n`;
    assert.deepEqual(parsed(parseBarsCsv(text, { file: 'DA-IBM-T-2021-04-21.csv' })).rejected, [
      { file: 'DA-IBM-T-2021-04-21.csv', line: 2, reason: 'adjusted_close is not a number ("x")' },
    ]);
  });
});
