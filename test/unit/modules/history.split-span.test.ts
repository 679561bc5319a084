import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { splitSpan } from '../../../src/modules/history/history-read.repository.js';

/** splitSpan: [start, end) cut at the stale spans, what confidenceHistory on TimescaleDB reads from where. */
test('examples: no stale span, one inside, one overlapping each end, one covering everything', () => {
  assert.deepEqual(splitSpan(0, 10, []), { exact: [[0, 10]], inexact: [] });
  assert.deepEqual(splitSpan(0, 10, [[3, 5]]), {
    exact: [
      [0, 3],
      [5, 10],
    ],
    inexact: [[3, 5]],
  });
  assert.deepEqual(
    splitSpan(0, 10, [
      [-5, 2],
      [8, Infinity],
    ]),
    {
      exact: [[2, 8]],
      inexact: [
        [0, 2],
        [8, 10],
      ],
    },
  );
  assert.deepEqual(splitSpan(0, 10, [[-Infinity, Infinity]]), { exact: [], inexact: [[0, 10]] });
  assert.deepEqual(splitSpan(5, 5, [[0, 10]]), { exact: [], inexact: [] }, 'an empty span has no parts');
  assert.deepEqual(splitSpan(0, 10, [[20, 30]]), { exact: [[0, 10]], inexact: [] }, 'a stale span outside is ignored');
});

test('property: the parts tile [start, end) without overlap, and a point is inexact exactly when some stale span holds it', () => {
  const sortedDisjoint = fc
    .array(fc.integer({ min: -50, max: 150 }), { maxLength: 12 })
    .map((points) => [...new Set(points)].sort((a, b) => a - b))
    .map((points) => {
      const spans: Array<[number, number]> = [];
      for (let i = 0; i + 1 < points.length; i += 2) spans.push([points[i]!, points[i + 1]!]);
      return spans;
    });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 60 }), sortedDisjoint, (start, length, stale) => {
      const end = start + length;
      const { exact, inexact } = splitSpan(start, end, stale);
      const parts = [...exact, ...inexact].sort((a, b) => a[0] - b[0]);
      let at = start;
      for (const [a, b] of parts) {
        assert.ok(a === at && b > a, `parts tile the span: ${JSON.stringify(parts)}`);
        at = b;
      }
      assert.equal(at, parts.length ? end : start);
      if (length > 0) assert.ok(parts.length > 0);
      for (let t = start; t < end; t++) {
        const inStale = stale.some(([a, b]) => a <= t && t < b);
        const inInexact = inexact.some(([a, b]) => a <= t && t < b);
        assert.equal(inInexact, inStale, `point ${t}`);
      }
    }),
  );
});
