import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dateSafeJson } from '../../../src/shared/date-safe-json.js';

test('dateSafeJson round-trips Dates nested anywhere, and everything else as JSON does', () => {
  const payload = { asOf: new Date('2021-04-21T20:00:00.000Z'), nested: [{ at: new Date(0), n: 1.5 }], s: '2021-04-21', nil: null };
  assert.deepEqual(dateSafeJson.parse(dateSafeJson.stringify(payload)), payload);
  fc.assert(
    fc.property(
      fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"$date"')),
      (value) => {
        assert.deepEqual(dateSafeJson.parse(dateSafeJson.stringify(value)), JSON.parse(JSON.stringify(value)));
      },
    ),
  );
});
