import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BAR_RULES, checkBar, checkMove, latestBarTime, validateBars } from '../../../src/infra/market-data/bar-rules.js';
import { SYMBOL_PATTERN, type Bar } from '../../../src/infra/market-data/market-data.js';
import { FEATURE_WINDOW, computeFeatures } from '../../../src/domain/features.js';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-12-03T15:00:00Z'); // a Thursday
const LATEST = latestBarTime(NOW);

function bar(day: number, values: Partial<Bar> = {}): Bar {
  return {
    symbol: 'TEST',
    time: new Date(Date.UTC(2021, 0, 4) + day * DAY_MS),
    open: 10,
    high: 11,
    low: 9,
    close: 10,
    adjClose: 10,
    volume: 1000,
    source: 'test',
    ...values,
  };
}

describe('bar rules', () => {
  test('the latest accepted bar time is the next weekday after today (UTC)', () => {
    const next = (iso: string) => latestBarTime(new Date(iso)).toISOString().slice(0, 10);
    assert.equal(next('2026-12-03T15:00:00Z'), '2026-12-04'); // Thursday → Friday
    assert.equal(next('2026-12-04T23:59:59Z'), '2026-12-07'); // Friday → Monday
    assert.equal(next('2026-12-05T00:00:00Z'), '2026-12-07'); // Saturday → Monday
    assert.equal(next('2026-12-06T12:00:00Z'), '2026-12-07'); // Sunday → Monday
  });

  test('the attacks of issue 17 are refused with a reason; the real data set’s extremes pass', () => {
    const refused: Array<[Partial<Bar>, RegExp]> = [
      [{ open: 1e308, high: 1e308, close: 1e308, adjClose: 1e308 }, /^open 1e\+308 is outside \[0\.000001, 1000000000\]$/],
      [{ open: 1e-320, high: 1e-320, low: 1e-320, close: 1e-320, adjClose: 1e-320 }, /^open 1e-320 is outside/],
      [{ time: new Date('2099-12-31T00:00:00Z') }, /^date 2099-12-31 is in the future \(latest accepted: 2026-12-04/],
      [{ volume: 1e13 }, /^volume 10000000000000 is outside \[0, 1000000000000\]$/],
      [{ volume: -1 }, /^volume -1 is outside/],
      [{ adjClose: Number.NaN }, /^adjClose is not a finite number \(NaN\)$/],
      [{ high: Number.POSITIVE_INFINITY }, /^high is not a finite number \(Infinity\)$/],
      [{ time: new Date(Number.NaN) }, /^time is not a valid date$/],
      [{ low: 11, high: 9 }, /^low 11 is above high 9$/],
      [{ open: 12 }, /^open 12 is outside \[low 9, high 11\]$/],
      [{ close: 8.5 }, /^close 8.5 is outside \[low 9, high 11\]$/],
      [{ adjClose: 0.0009 }, /^adjusted close 0.0009 is 1\/11100 of the close 10; at most 10000× either way$/],
      [{ adjClose: 100_001 }, /^adjusted close 100001 is 10000× the close 10/],
    ];
    for (const [change, reason] of refused) assert.match(checkBar(bar(0, change), LATEST) ?? '(accepted)', reason, JSON.stringify(change));

    // From the real files: a flat vendor bar (INTC 2014-06-13), GILD's zero-volume day, AAPL's adjusted
    // close at 0.0077 of its raw close (1999, before four splits), C's at 8.79 (2009, before 1:10), the
    // largest volume, and a bar dated the next weekday.
    const accepted: Array<Partial<Bar>> = [
      { open: 27.96, high: 27.96, low: 27.96, close: 27.96, adjClose: 24.67, volume: 122_000_000 },
      { open: 63.25, high: 63.25, low: 63.25, close: 63.25, adjClose: 1.2, volume: 0 },
      { open: 117, high: 120, low: 116, close: 118.5, adjClose: 0.9112, volume: 3_000_000 },
      { open: 4, high: 4.2, low: 3.9, close: 4.05, adjClose: 35.59, volume: 3_772_638_000 },
      { open: 0.2018, high: 0.21, low: 0.2, close: 0.2018, adjClose: 0.2018 },
      { open: 5059, high: 5059, low: 5000, close: 5050, adjClose: 5050 },
      { time: LATEST },
    ];
    for (const change of accepted) assert.equal(checkBar(bar(0, change), LATEST), undefined, JSON.stringify(change));
  });

  test('a step of the adjusted close beyond 10× between consecutive trading days is refused; further apart it is not compared', () => {
    assert.equal(checkMove(bar(0, { adjClose: 10 }), bar(1, { adjClose: 100 })), undefined); // exactly 10×
    assert.match(
      checkMove(bar(0, { adjClose: 10 }), bar(1, { adjClose: 100.1 })) ?? '',
      /^adjusted close 100.1 is 10× the previous bar's 10 \(2021-01-04\); at most 10× either way/,
    );
    assert.match(checkMove(bar(0, { adjClose: 10 }), bar(7, { adjClose: 0.5 })) ?? '', /is 1\/20 of the previous bar's 10/);
    assert.equal(checkMove(bar(0, { adjClose: 10 }), bar(8, { adjClose: 0.5 })), undefined, 'more than a week apart');
    // The real data's largest steps: ×0.481 (AAPL 2000-09-29) and ×1.870 (MS 2008-10-13).
    assert.equal(checkMove(bar(0, { adjClose: 1 }), bar(1, { adjClose: 0.481 })), undefined);
    assert.equal(checkMove(bar(0, { adjClose: 1 }), bar(1, { adjClose: 1.87 })), undefined);
  });

  test('validateBars: a refused spike costs only its own bar; the stored previous bar starts each symbol', () => {
    const bars = [
      bar(0),
      bar(1, { adjClose: 1000, close: 1000, high: 1000 }),
      bar(2),
      bar(3, { symbol: 'bad symbol' }),
      bar(3, { symbol: 'OTHER', adjClose: 0.5, close: 0.5, low: 0.5, open: 0.5 }),
    ];
    const previous = new Map([['OTHER', bar(2, { symbol: 'OTHER' })]]);
    const { accepted, refused } = validateBars(bars, { now: NOW, previous });
    assert.deepEqual(accepted, [bars[0], bars[2]]);
    assert.deepEqual(
      refused.map((r) => r.index),
      [1, 3, 4],
    );
    assert.match(refused[0]!.reason, /^adjusted close 1000 is 100× the previous bar's 10 \(2021-01-04\)/);
    assert.equal(refused[1]!.reason, 'symbol "bad symbol" is not a ticker');
    assert.match(refused[2]!.reason, /^adjusted close 0.5 is 1\/20 of the previous bar's 10 \(2021-01-06\)/);
  });

  test('property: any bar values give an answer, never a throw; whatever is accepted obeys every bound', () => {
    const price = fc.oneof(
      fc.double({ noNaN: false }),
      fc.constantFrom(1e308, 1e-320, 0, -0, 5e-324, 1e-6, 1e9, 1e9 + 1, 9.99e-7, Number.MAX_VALUE),
      fc.double({ min: 1e-7, max: 1e10, noNaN: true }),
    );
    const time = fc.oneof(
      fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: false }),
      fc.constant(new Date('2099-12-31T00:00:00Z')),
    );
    const anyBar = fc.record({
      symbol: fc.oneof(fc.constantFrom('A', 'B'), fc.string({ maxLength: 12 })),
      time,
      open: price,
      high: price,
      low: price,
      close: price,
      adjClose: price,
      volume: fc.oneof(price, fc.double({ min: 0, max: 1e13, noNaN: true })),
      source: fc.constantFrom('test', ''),
    });
    fc.assert(
      fc.property(fc.array(anyBar, { maxLength: 20 }), (bars) => {
        const { accepted, refused } = validateBars(bars, { now: NOW });
        assert.equal(accepted.length + refused.length, bars.length);
        for (const r of refused) assert.ok(r.reason.length > 0 && bars[r.index] === r.bar);
        const last = new Map<string, Bar>();
        for (const b of [...accepted].sort((x, y) => x.time.getTime() - y.time.getTime())) {
          assert.match(b.symbol, SYMBOL_PATTERN);
          assert.ok(b.time.getTime() <= LATEST.getTime());
          for (const v of [b.open, b.high, b.low, b.close, b.adjClose]) assert.ok(v >= BAR_RULES.minPrice && v <= BAR_RULES.maxPrice);
          assert.ok(b.volume >= 0 && b.volume <= BAR_RULES.maxVolume);
          assert.ok(b.low <= Math.min(b.open, b.close) && b.high >= Math.max(b.open, b.close));
          const ratio = b.adjClose / b.close;
          assert.ok(ratio >= 1 / BAR_RULES.maxAdjustmentRatio && ratio <= BAR_RULES.maxAdjustmentRatio);
          const before = last.get(b.symbol);
          if (before && b.time.getTime() - before.time.getTime() <= BAR_RULES.moveWindowDays * DAY_MS && b.time > before.time) {
            const step = b.adjClose / before.adjClose;
            assert.ok(step >= 1 / BAR_RULES.maxDailyMove && step <= BAR_RULES.maxDailyMove);
          }
          last.set(b.symbol, b);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('property: features computed from any window of accepted bars are finite (what serving needs)', () => {
    // The most hostile accepted series: every value at or near a bound, daily steps up to the limit.
    const step = fc.oneof(
      fc.constantFrom(BAR_RULES.maxDailyMove, 1 / BAR_RULES.maxDailyMove, 1),
      fc.double({ min: 0.1, max: 10, noNaN: true }),
    );
    const edge = (min: number, max: number) => fc.oneof(fc.constantFrom(min, max), fc.double({ min, max, noNaN: true }));
    fc.assert(
      fc.property(
        edge(BAR_RULES.minPrice, BAR_RULES.maxPrice),
        fc.array(
          fc.tuple(
            step,
            edge(1 / BAR_RULES.maxAdjustmentRatio, BAR_RULES.maxAdjustmentRatio),
            edge(0, BAR_RULES.maxVolume),
            fc.double({ min: 1, max: 1e6, noNaN: true }),
          ),
          {
            minLength: FEATURE_WINDOW,
            maxLength: FEATURE_WINDOW + 20,
          },
        ),
        (start, days) => {
          let adj = start;
          const candidates = days.map(([move, ratio, volume, spread], i) => {
            adj = Math.min(Math.max(adj * move, BAR_RULES.minPrice), BAR_RULES.maxPrice);
            const close = Math.min(Math.max(adj / ratio, BAR_RULES.minPrice), BAR_RULES.maxPrice);
            const high = Math.min(close * spread, BAR_RULES.maxPrice);
            return bar(i, { adjClose: adj, close, open: close, high, low: close, volume });
          });
          const { accepted } = validateBars(candidates, { now: NOW });
          if (accepted.length < FEATURE_WINDOW) return;
          const { values } = computeFeatures(accepted);
          for (const v of values) assert.ok(Number.isFinite(v), `features ${[...values].join(', ')}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});
