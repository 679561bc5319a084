import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { compareSchemas } from '../../../tools/schema-compat.js';

const BASE = `
type Query {
  """A quote"""
  quote(symbol: String!): Quote
  """Old name"""
  price: Float @deprecated(reason: "Use quote. Removal after 2026-01-31")
  """Grandfathered"""
  legacy: Int @deprecated(reason: "Use quote")
}
type Quote {
  symbol: String!
  last: Float!
}
`;
const TODAY = '2026-06-01';

describe('schema compatibility check (graphql-inspector)', () => {
  test('the committed schema against itself has nothing to report', async () => {
    const sdl = readFileSync('schema.graphql', 'utf8');
    const report = await compareSchemas(sdl, sdl, [], TODAY);
    assert.deepEqual([report.breaking, report.allowed, report.policyViolations], [[], [], []]);
  });

  test('a removed field and a changed field type are breaking', async () => {
    const current = BASE.replace('  last: Float!\n', '').replace('symbol: String!\n', 'symbol: Int!\n');
    const report = await compareSchemas(BASE, current, [], TODAY);
    assert.deepEqual(report.breaking.map((c) => `${c.type} ${c.path}`).sort(), [
      'FIELD_REMOVED Quote.last',
      'FIELD_TYPE_CHANGED Quote.symbol',
    ]);
  });

  test('an added optional field and an added nullable argument are not breaking', async () => {
    const current = BASE.replace('last: Float!', 'last: Float!\n  volume: Float').replace(
      'quote(symbol: String!)',
      'quote(symbol: String!, venue: String)',
    );
    const report = await compareSchemas(BASE, current, [], TODAY);
    assert.deepEqual(report.breaking, []);
  });

  test('a required argument added to an existing field is breaking', async () => {
    const current = BASE.replace('quote(symbol: String!)', 'quote(symbol: String!, venue: String!)');
    const report = await compareSchemas(BASE, current, [], TODAY);
    assert.deepEqual(
      report.breaking.map((c) => c.type),
      ['FIELD_ARGUMENT_ADDED'],
    );
  });

  test('a listed breaking change is allowed with its reason; a listed entry matching nothing is reported', async () => {
    const current = BASE.replace('  last: Float!\n', '');
    const accepted = [
      { type: 'FIELD_REMOVED', path: 'Quote.last', reason: 'never served a value' },
      { type: 'FIELD_REMOVED', path: 'Quote.bid', reason: 'stale' },
    ];
    const report = await compareSchemas(BASE, current, accepted, TODAY);
    assert.deepEqual(report.breaking, []);
    assert.deepEqual(
      report.allowed.map((a) => a.why),
      ['accepted: never served a value'],
    );
    assert.deepEqual(
      report.unusedAccepted.map((e) => e.path),
      ['Quote.bid'],
    );
  });

  test('removing a field deprecated with a passed removal date is allowed; before the date, or undated, it is breaking', async () => {
    const current = BASE.replace(/ {2}"""Old name"""\n.*\n/, '').replace(/ {2}"""Grandfathered"""\n.*\n/, '');
    const after = await compareSchemas(BASE, current, [], TODAY);
    assert.deepEqual(
      after.breaking.map((c) => c.path),
      ['Query.legacy'],
    );
    assert.deepEqual(
      after.allowed.map((a) => a.change.path),
      ['Query.price'],
    );
    const before = await compareSchemas(BASE, current, [], '2026-01-30');
    assert.deepEqual(before.breaking.map((c) => c.path).sort(), ['Query.legacy', 'Query.price']);
  });

  test('a new deprecation needs "removal after <date>" at least 90 days away; released ones are not judged again', async () => {
    const deprecate = (reason: string) => BASE.replace('last: Float!', `last: Float! @deprecated(reason: ${JSON.stringify(reason)})`);
    const undated = await compareSchemas(BASE, deprecate('Use quote.price'), [], TODAY);
    assert.match(undated.policyViolations.join('\n'), /^Quote\.last .*removal after YYYY-MM-DD/);
    const tooSoon = await compareSchemas(BASE, deprecate('Use quote.price. Removal after 2026-07-01'), [], TODAY);
    assert.match(tooSoon.policyViolations.join('\n'), /2026-08-30 or later/);
    const ok = await compareSchemas(BASE, deprecate('Use quote.price. Removal after 2026-09-01'), [], TODAY);
    assert.deepEqual(ok.policyViolations, []);
    assert.deepEqual(ok.breaking, [], 'deprecating is not breaking');
  });
});
