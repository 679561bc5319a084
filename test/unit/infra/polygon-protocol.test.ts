import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PolygonRefusal, parseAggsPage, parsePolygonFrame } from '../../../src/infra/market-data/polygon-protocol.js';
import { TOO_MANY_REQUESTS, UNKNOWN_API_KEY, NOT_ENTITLED, aggregatesPage } from '../../fixtures/polygon/wire.js';

// Shapes from the documentation cited in test/fixtures/polygon/wire.ts.
const AGG = { v: 58414460, vw: 184.319, o: 184.22, c: 184.25, h: 185.88, l: 183.43, t: 1704258000000, n: 656956 };

describe('Polygon wire format', () => {
  test('a documented aggregates page parses; an empty one omits results; next_url is kept', () => {
    const page = parseAggsPage(aggregatesPage('AAPL', true, [AGG], 'https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/day/a/b?cursor=x'));
    assert.equal(page.ticker, 'AAPL');
    assert.equal(page.results[0]!.c, 184.25);
    assert.match(page.nextUrl!, /cursor=x/);
    assert.deepEqual(parseAggsPage(aggregatesPage('AAPL', false, [])).results, []);
  });

  test('refusal bodies become PolygonRefusal with their kind; malformed pages throw naming the field', () => {
    const kindOf = (body: unknown) => {
      try {
        parseAggsPage(body);
      } catch (error) {
        return error instanceof PolygonRefusal ? error.kind : 'malformed';
      }
      return 'parsed';
    };
    assert.equal(kindOf(TOO_MANY_REQUESTS), 'throttled');
    assert.equal(kindOf(UNKNOWN_API_KEY), 'not-authorized');
    assert.equal(kindOf(NOT_ENTITLED), 'not-authorized');
    assert.equal(kindOf({ status: 'ERROR', error: 'something else' }), 'error');
    assert.throws(() => parseAggsPage({ ...aggregatesPage('AAPL', true, [AGG]), results: [{ ...AGG, t: 'yesterday' }] }), /results\.0\.t/);
    assert.throws(() => parseAggsPage({ ...aggregatesPage('AAPL', true, [AGG]), ticker: 'not a ticker' }), /ticker/);
  });

  test('stream frames: status, AM and anything else as malformed or other, never a throw', () => {
    const frame = JSON.stringify([
      { ev: 'status', status: 'auth_success', message: 'authenticated' },
      { ev: 'AM', sym: 'AAPL', v: 1, av: 2, op: 1, vw: 1, o: 1, c: 1, h: 1, l: 1, a: 1, z: 1, s: 1704292200000, e: 1704292260000 },
      { ev: 'T', sym: 'AAPL', p: 1 },
      { ev: 'AM', sym: 'AAPL' },
      42,
    ]);
    assert.deepEqual(
      parsePolygonFrame(frame).map((m) => m.ev),
      ['status', 'AM', 'other', 'malformed', 'malformed'],
    );
    assert.deepEqual(parsePolygonFrame('{"ev":"status"}'), [{ ev: 'malformed', reason: 'frame is not a JSON array' }]);
  });

  test('property: any text is a list of messages (never a throw); any JSON body either parses, is refused, or throws an Error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const messages = parsePolygonFrame(text);
        assert.ok(Array.isArray(messages) && messages.length >= 0);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        try {
          const page = parseAggsPage(body);
          assert.ok(Array.isArray(page.results));
        } catch (error) {
          assert.ok(error instanceof Error);
        }
      }),
      { numRuns: 500 },
    );
  });
});
