import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  isFinalSession,
  parseBarsPage,
  parseStreamFrame,
  sessionClose,
  sessionDate,
  weekdaysBetween,
} from '../../../src/infra/market-data/alpaca-protocol.js';

// Shapes from https://docs.alpaca.markets/us/reference/stockbars and
// https://docs.alpaca.markets/docs/real-time-stock-pricing-data.
const PAGE = {
  bars: { AAPL: [{ t: '2024-01-03T05:00:00Z', o: 184.22, h: 185.88, l: 183.43, c: 184.25, v: 58414460, n: 656956, vw: 184.319 }] },
  next_page_token: 'QUFQTHxEfDIwMjQtMDEtMDNUMDU6MDA6MDAuMDAwMDAwMDAwWg==',
};

describe('Alpaca wire format', () => {
  test('a documented bars page parses; null bars and a null token mean an empty last page', () => {
    const page = parseBarsPage(PAGE);
    assert.equal(page.nextPageToken, PAGE.next_page_token);
    assert.equal(page.bars.get('AAPL')![0]!.c, 184.25);
    assert.deepEqual(parseBarsPage({ bars: null, next_page_token: null }), { bars: new Map(), nextPageToken: undefined });
  });

  test('malformed pages throw, naming the field', () => {
    assert.throws(() => parseBarsPage({ bars: { AAPL: [{ t: 'yesterday', o: 1, h: 1, l: 1, c: 1, v: 1 }] } }), /AAPL\.0\.t/);
    assert.throws(() => parseBarsPage({ bars: { AAPL: [{ t: '2024-01-03T05:00:00Z', o: '1', h: 1, l: 1, c: 1, v: 1 }] } }), /AAPL\.0\.o/);
    assert.throws(() => parseBarsPage({ bars: { 'not a symbol': [] } }));
    assert.throws(() => parseBarsPage([]));
    assert.throws(() => parseBarsPage({ bars: {}, next_page_token: 5 }));
  });

  test('stream frames: control messages, daily bars, and anything else as malformed or other, never a throw', () => {
    const frame = JSON.stringify([
      { T: 'success', msg: 'connected' },
      { T: 'error', code: 402, msg: 'auth failed' },
      { T: 'subscription', trades: [], quotes: [], bars: [], dailyBars: ['AAPL'] },
      { T: 'd', S: 'AAPL', o: 1, h: 2, l: 0.5, c: 1.5, v: 10, t: '2024-01-03T05:00:00Z', n: 1, vw: 1.2 },
      { T: 't', S: 'AAPL', p: 1 },
      { T: 'd', S: 'AAPL', o: 'x' },
    ]);
    assert.deepEqual(
      parseStreamFrame(frame).map((m) => m.T),
      ['success', 'error', 'subscription', 'd', 'other', 'malformed'],
    );
    assert.deepEqual(parseStreamFrame('{"T":"success"}'), [{ T: 'malformed', reason: 'frame is not a JSON array' }]);
    assert.deepEqual(parseStreamFrame('nope'), [{ T: 'malformed', reason: 'frame is not JSON' }]);
  });

  test('property: any text or JSON value gives a list of messages, never a throw; bars that come out are finite', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc
            .array(
              fc.record({
                T: fc.constantFrom('d', 'b', 'error', 'success', 'subscription'),
                S: fc.string(),
                o: fc.anything(),
                c: fc.double(),
                t: fc.string(),
                code: fc.anything(),
                msg: fc.anything(),
              }),
            )
            .map((v) => JSON.stringify(v)),
        ),
        (text) => {
          const messages = parseStreamFrame(text);
          assert.ok((Array.isArray(messages) && messages.length >= 1) || text.trim() === '[]');
          for (const m of messages)
            if (m.T === 'd' || m.T === 'b') assert.ok(Number.isFinite(m.bar.c) && Number.isFinite(Date.parse(m.bar.t)));
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.anything(), (body) => {
        try {
          parseBarsPage(body);
        } catch (error) {
          assert.ok(error instanceof Error);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('session dates are read in New York: midnight New York (04:00 or 05:00 UTC) and late evening UTC both land on the right day', () => {
    assert.equal(sessionDate('2024-01-03T05:00:00Z').toISOString(), '2024-01-03T00:00:00.000Z');
    assert.equal(sessionDate('2024-07-03T04:00:00Z').toISOString(), '2024-07-03T00:00:00.000Z');
    // 02:00 UTC on the 4th is still the 3rd in New York.
    assert.equal(sessionDate('2024-01-04T02:00:00Z').toISOString(), '2024-01-03T00:00:00.000Z');
    // Stamped at the close, or re-stamped at 00:00 UTC of the date: the same session.
    assert.equal(sessionDate('2024-01-03T21:00:00Z').toISOString(), '2024-01-03T00:00:00.000Z');
    assert.equal(sessionDate('2024-01-03T00:00:00Z').toISOString(), '2024-01-03T00:00:00.000Z');
  });

  test('a session is final at 16:00 New York time (21:00 UTC in winter, 20:00 in summer)', () => {
    assert.equal(sessionClose(new Date('2024-01-03T00:00:00Z')).toISOString(), '2024-01-03T21:00:00.000Z');
    assert.equal(sessionClose(new Date('2024-07-03T00:00:00Z')).toISOString(), '2024-07-03T20:00:00.000Z');
    assert.equal(isFinalSession(new Date('2024-07-03T00:00:00Z'), new Date('2024-07-03T19:59:59Z')), false);
    assert.equal(isFinalSession(new Date('2024-07-03T00:00:00Z'), new Date('2024-07-03T20:00:00Z')), true);
  });

  test('weekdays between sessions: Friday → Monday is no gap, Monday → Wednesday is one', () => {
    assert.equal(weekdaysBetween(new Date('2024-01-05T00:00:00Z'), new Date('2024-01-08T00:00:00Z')), 0);
    assert.equal(weekdaysBetween(new Date('2024-01-08T00:00:00Z'), new Date('2024-01-10T00:00:00Z')), 1);
  });
});
