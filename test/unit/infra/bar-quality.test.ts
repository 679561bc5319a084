import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  QUALITY_POLICY,
  QUALITY_REASONS,
  assessSeries,
  excludedFrom,
  ownFlags,
  withQuality,
  type QualityValues,
} from '../../../src/infra/market-data/bar-quality.js';
import type { Bar } from '../../../src/infra/market-data/market-data.js';
import { closedReason, isSession, nyseHolidays, sessionsBetween } from '../../../src/infra/market-data/nyse-calendar.js';

const DAY_MS = 86_400_000;
const day = (text: string) => new Date(`${text}T00:00:00Z`);

/** Consecutive NYSE sessions from `first` (inclusive). */
function sessions(first: string, count: number): Date[] {
  const out: Date[] = [];
  for (let t = day(first).getTime(); out.length < count; t += DAY_MS) if (isSession(new Date(t))) out.push(new Date(t));
  return out;
}

/** A clean bar at `time` closing at `close` (adjusted = raw), with a real range and volume. */
function bar(time: Date, close: number, volume = 1_000_000): QualityValues {
  return { time, open: close * 0.999, high: close * 1.01, low: close * 0.99, close, adjClose: close, volume };
}

/** A calm series: daily log returns alternating ±1 %, so the recent volatility is about 1 %. */
function calmSeries(times: readonly Date[], start = 100): QualityValues[] {
  let close = start;
  return times.map((time, i) => {
    if (i > 0) close *= Math.exp(i % 2 === 0 ? 0.01 : -0.01);
    return bar(time, close);
  });
}

describe('NYSE calendar', () => {
  test('regular holidays, their observed days, and the closures outside the rules', () => {
    const closed = {
      '2021-04-02': 'Good Friday',
      '2021-01-18': 'Martin Luther King Jr. Day',
      '2020-07-03': 'Independence Day', // July 4th on a Saturday: closed the Friday before
      '2021-12-24': 'Christmas Day', // Christmas on a Saturday
      '2022-06-20': 'Juneteenth', // June 19th on a Sunday: closed the Monday after
      '2017-01-02': "New Year's Day", // on a Sunday
      '2012-10-29': 'Hurricane Sandy',
      '2001-09-13': 'September 11 attacks',
      '2018-12-05': 'National day of mourning, President George H. W. Bush',
      '2021-04-03': 'weekend',
    };
    for (const [date, reason] of Object.entries(closed)) assert.equal(closedReason(day(date)), reason, date);
    // New Year's Day on a Saturday closes nothing: the Friday before ends the year.
    assert.equal(closedReason(day('2021-12-31')), undefined);
    assert.equal(closedReason(day('2010-12-31')), undefined);
    // Juneteenth was not a market holiday before 2022; the day after Thanksgiving is an (early-close) session.
    assert.equal(closedReason(day('2021-06-18')), undefined);
    assert.equal(closedReason(day('2021-11-26')), undefined);
    assert.equal(nyseHolidays(2021).size, 9);
  });

  test('sessions between two dates skip weekends and holidays', () => {
    // Thursday before Good Friday 2021 → the Monday after: no session between.
    assert.deepEqual(sessionsBetween(day('2021-04-01'), day('2021-04-05')), []);
    // Friday → Wednesday: Monday and Tuesday are missing.
    assert.deepEqual(
      sessionsBetween(day('2021-04-09'), day('2021-04-14')).map((d) => d.toISOString().slice(0, 10)),
      ['2021-04-12', '2021-04-13'],
    );
  });
});

describe('data-quality rules', () => {
  test('flat OHLC with volume is flat_price; no volume is zero_volume; a weekend bar is off_calendar', () => {
    const flat = { ...bar(day('2021-04-20'), 50), open: 50, high: 50, low: 50 };
    assert.deepEqual(ownFlags(flat), ['flat_price']);
    assert.deepEqual(ownFlags({ ...flat, volume: 0 }), ['zero_volume']);
    assert.deepEqual(ownFlags(bar(day('2021-04-20'), 50, 0)), ['zero_volume']);
    assert.deepEqual(ownFlags(bar(day('2021-04-20'), 50)), []);
    assert.deepEqual(ownFlags(bar(day('2021-04-24'), 50)), ['off_calendar']);
    assert.deepEqual(ownFlags(bar(day('2021-04-02'), 50)), ['off_calendar']); // Good Friday
  });

  test('a holiday between two bars is not a gap; a missing session is, flagged on the bar after it', () => {
    const around = calmSeries([day('2021-03-31'), day('2021-04-01'), day('2021-04-05'), day('2021-04-06')]);
    assert.deepEqual(assessSeries(around), [[], [], [], []]);
    const missing = calmSeries([day('2021-04-06'), day('2021-04-07'), day('2021-04-09'), day('2021-04-12')]);
    assert.deepEqual(assessSeries(missing), [[], [], ['session_gap'], []]);
  });

  test('a move beyond N× the recent volatility is large_move; N is a setting', () => {
    const times = sessions('2021-01-04', 31);
    const series = calmSeries(times);
    const last = series.at(-1)!;
    series[30] = { ...bar(last.time, series[29]!.close * 1.2) }; // +18 % log move against ~1 % volatility
    assert.deepEqual(assessSeries(series).at(-1), ['large_move']);
    assert.deepEqual(assessSeries(series, { moveSigmas: 30 }).at(-1), []);
    // Too little history to know the volatility: not judged.
    assert.deepEqual(assessSeries(series.slice(20)).at(-1), []);
  });

  test('a 4-for-1 split is not a crash: raw prices quarter, the adjusted close does not move', () => {
    const times = sessions('2020-07-01', 40);
    const adjusted = calmSeries(times, 125);
    // Before the split the raw close is 4× the adjusted one (the vendor back-adjusts history).
    const withSplit = adjusted.map((b, i) =>
      i < 30 ? { ...b, open: b.open * 4, high: b.high * 4, low: b.low * 4, close: b.close * 4, volume: b.volume / 4 } : b,
    );
    assert.deepEqual(
      assessSeries(withSplit).flatMap((flags) => flags),
      [],
    );
  });

  test('property: a split anywhere (any ratio on the raw prices before it) never changes the flags', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -0.08, max: 0.08, noNaN: true }), { minLength: 25, maxLength: 60 }),
        fc.nat(),
        fc.constantFrom(2, 3, 4, 5, 7, 10, 1.5, 0.1, 1 / 3),
        (moves, at, ratio) => {
          const times = sessions('2019-01-02', moves.length + 1);
          let close = 50;
          const series = times.map((time, i) => {
            if (i > 0) close *= Math.exp(moves[i - 1]!);
            return bar(time, close);
          });
          const splitAt = at % series.length;
          const split = series.map((b, i) =>
            i < splitAt ? { ...b, open: b.open * ratio, high: b.high * ratio, low: b.low * ratio, close: b.close * ratio } : b,
          );
          assert.deepEqual(assessSeries(split), assessSeries(series));
        },
      ),
    );
  });

  test('property: consecutive sessions, whatever weekends and holidays lie between them, are never a gap', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1998-01-02'), max: new Date('2030-12-01'), noInvalidDate: true }),
        fc.integer({ min: 2, max: 40 }),
        (start, count) => {
          const times = sessions(start.toISOString().slice(0, 10), count);
          const flags = assessSeries(calmSeries(times));
          assert.ok(flags.every((f) => !f.includes('session_gap') && !f.includes('off_calendar')));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('property: removing sessions flags exactly the bar after each hole', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 5, maxLength: 60 }), (keep) => {
        const all = sessions('2015-11-20', keep.length + 2);
        // The first and last are always kept, so every hole has a bar after it.
        const kept = all.filter((_, i) => i === 0 || i === all.length - 1 || keep[i - 1]);
        const flags = assessSeries(calmSeries(kept));
        kept.forEach((time, k) => {
          const holeBefore = k > 0 && all.indexOf(time) - all.indexOf(kept[k - 1]!) > 1;
          assert.equal(flags[k]!.includes('session_gap'), holeBefore);
        });
      }),
    );
  });

  test('property: moves within N× the volatility floor are never large_move, whatever N', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 12, maxLength: 50 }),
        fc.double({ min: 1, max: 20, noNaN: true }),
        (units, sigmas) => {
          const times = sessions('2010-03-01', units.length + 1);
          let close = 80;
          // Each log move is at most N × the floor (0.5 %): never beyond N × max(volatility, floor).
          const series = times.map((time, i) => {
            if (i > 0) close *= Math.exp(units[i - 1]! * sigmas * 0.005 * 0.999);
            return bar(time, close);
          });
          assert.ok(assessSeries(series, { moveSigmas: sigmas }).every((f) => !f.includes('large_move')));
        },
      ),
    );
  });

  test('withQuality judges a batch after the stored bars before it (context), per symbol, in input order', () => {
    const times = sessions('2021-03-01', 25);
    const stored = calmSeries(times.slice(0, 20)).map((b): Bar => ({ ...b, symbol: 'AAPL', source: 'test' }));
    const next = calmSeries(times.slice(20)).map((b): Bar => ({ ...b, symbol: 'AAPL', source: 'test' }));
    // Skip one session, and make the new bar a crash against the stored history's volatility.
    const batch: Bar[] = [
      { ...next[2]!, symbol: 'AAPL', close: 60, adjClose: 60, open: 61, high: 62, low: 59 },
      { ...next[0]!, symbol: 'MSFT' },
    ];
    const flagged = withQuality(batch, new Map([['AAPL', stored]]));
    assert.deepEqual(flagged[0]!.quality, ['session_gap', 'large_move']);
    assert.deepEqual(flagged[1]!.quality, []);
  });

  test('the policy: price flags leave a bar out of training and outcomes; a large move does not', () => {
    assert.deepEqual(Object.keys(QUALITY_POLICY).sort(), [...QUALITY_REASONS].sort());
    const values = bar(day('2021-04-20'), 10);
    assert.equal(excludedFrom('outcomes', { ...values, quality: ['flat_price'] }), true);
    assert.equal(excludedFrom('training', { ...values, quality: ['session_gap'] }), true);
    assert.equal(excludedFrom('outcomes', { ...values, quality: ['large_move'] }), false);
    assert.equal(excludedFrom('training', { ...values, quality: [] }), false);
    // Never assessed (the synthetic market trades on weekends): judged on its values only.
    assert.equal(excludedFrom('training', bar(day('2021-04-24'), 10)), false);
    assert.equal(excludedFrom('training', { ...values, open: 10, high: 10, low: 10 }), true);
  });
});
