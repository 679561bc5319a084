import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { manifestSchema } from '../../../src/domain/manifest.js';
import { DriftService, type DriftDependencies } from '../../../src/modules/drift/index.js';
import type { ModelVersionEntry } from '../../../src/modules/models/index.js';
import { projectRoot } from '../../helpers/process.js';

const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(projectRoot, 'models/direction-1d/v1/manifest.json'), 'utf8')));
/** Enough of a loaded version for the checks that come before any bar is read. */
const entry = { manifest, featureOrder: manifest.features.map((_, i) => i) } as unknown as ModelVersionEntry;
const stored = ['AAA', 'BBB', 'CCC'];

function service(overrides: Partial<DriftDependencies> = {}, fetched: string[][] = []) {
  return new DriftService({
    models: {
      active: (s) => (s === 'direction-1d' ? entry : undefined),
      find: (s, v) => (s === 'direction-1d' && v === 'v1' ? entry : undefined),
    },
    market: {
      listSymbols: () => Promise.resolve(stored),
      fetchBars: (symbols) => {
        fetched.push([...symbols]);
        return Promise.resolve(new Map());
      },
    },
    realized: () => Promise.reject(new Error('not reached')),
    limits: { maxSymbols: 2, maxWindowDays: 31 },
    ...overrides,
  });
}

const codeOf = (error: unknown) => (error as { extensions?: { code?: unknown } }).extensions?.code;
const day = (iso: string) => new Date(`${iso}T00:00:00Z`);

describe('DriftService: refusals come before any bar is read, each with a client code', () => {
  test('too many symbols, asked or stored', async () => {
    const fetched: string[][] = [];
    const drift = service({}, fetched);
    const window = { from: day('2020-03-01'), to: day('2020-03-31') };
    await assert.rejects(
      drift.drift({ strategy: 'direction-1d', window }),
      (e) => codeOf(e) === 'BAD_USER_INPUT' && /at most 2/.test(String(e)),
    );
    await assert.rejects(drift.drift({ strategy: 'direction-1d', window, symbols: stored }), (e) => codeOf(e) === 'BAD_USER_INPUT');
    // Repeats count once.
    await assert.rejects(
      drift.drift({ strategy: 'direction-1d', window, symbols: ['AAA', 'AAA', 'ZZZ'] }),
      (e) => codeOf(e) === 'UNKNOWN_SYMBOL',
    );
    assert.deepEqual(fetched, []);
  });

  test('windows: inverted, too long, invalid dates; versions and strategies', async () => {
    const drift = service();
    const ask = (window: { from: Date; to: Date }, extra: object = {}) =>
      drift.drift({ strategy: 'direction-1d', window, symbols: ['AAA'], ...extra });
    await assert.rejects(ask({ from: day('2020-03-31'), to: day('2020-03-01') }), (e) => codeOf(e) === 'BAD_USER_INPUT');
    await assert.rejects(
      ask({ from: day('2020-03-01'), to: day('2020-04-01') }),
      (e) => codeOf(e) === 'BAD_USER_INPUT' && /32 days/.test(String(e)),
    );
    await assert.rejects(ask({ from: new Date(Number.NaN), to: day('2020-03-01') }), (e) => codeOf(e) === 'BAD_USER_INPUT');
    await assert.rejects(ask({ from: day('2020-03-01'), to: day('2020-03-31') }, { version: 'v9' }), (e) => codeOf(e) === 'BAD_USER_INPUT');
    await assert.rejects(
      ask({ from: day('2020-03-01'), to: day('2020-03-31') }, { strategy: 'direction-5d' }),
      (e) => codeOf(e) === 'UNAVAILABLE',
    );
    await assert.rejects(
      ask({ from: day('2020-03-01'), to: day('2020-03-31') }, { strategy: 'nope-1d' }),
      (e) => codeOf(e) === 'UNKNOWN_STRATEGY',
    );
    // No stored history in the window: a client error, not an internal one.
    await assert.rejects(ask({ from: day('2020-03-01'), to: day('2020-03-31') }), (e) => codeOf(e) === 'BAD_USER_INPUT');
  });

  test('property: any window longer than the limit is refused, any shorter one passes the window check', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: 0, max: 200 }), async (start, length) => {
        const from = new Date(Date.UTC(2000, 0, 1) + start * 86_400_000);
        const to = new Date(from.getTime() + length * 86_400_000);
        const outcome = await service()
          .drift({ strategy: 'direction-1d', window: { from, to }, symbols: ['AAA'] })
          .then(
            () => 'answered',
            (e: unknown) => String(e),
          );
        assert.equal(/at most 31 per request/.test(outcome), length + 1 > 31, outcome);
      }),
      { numRuns: 50 },
    );
  });
});
