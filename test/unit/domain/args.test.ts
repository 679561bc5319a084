import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StrategyArgs, SymbolArgs } from '../../../src/domain/args.js';
import { manifestSchema } from '../../../src/domain/manifest.js';
import { QUERIED_VERSION_PATTERN, STRATEGY_PATTERN, SYMBOL_PATTERN, VERSION_PATTERN } from '../../../src/domain/names.js';
import { ConfidenceHistoryArgs, ConfidenceTrendsArgs } from '../../../src/modules/history/history.args.js';
import { ModelMetricsArgs } from '../../../src/modules/metrics/metrics.args.js';
import { ActivateModelVersionArgs, ShadowModelVersionArgs } from '../../../src/modules/models/models.args.js';
import { PredictionsArgs } from '../../../src/modules/predictions/predictions.args.js';
import { SignalsArgs } from '../../../src/modules/signals/signals.args.js';
import { validateItem } from '../../../src/schema/validate-args.js';

/**
 * The names every query takes are validated by the rules declared once in src/domain, whichever args
 * class carries them: inherited from StrategyArgs / SymbolArgs or put there by the domain's fields.
 */

type ArgsClass = new () => object;

/** The messages of the failed constraints, by property. */
function failures(Type: ArgsClass, values: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const error of validateItem(Object.assign(new Type(), values))) out[error.property] = Object.values(error.constraints ?? {});
  return out;
}

const VALID = {
  strategy: 'direction-1d',
  symbol: 'AAPL',
  symbols: ['AAPL', 'BRK.B'],
  version: 'v1',
};

/** Each class with the valid values of its required arguments. */
const CLASSES: Array<{ Type: ArgsClass; base: Record<string, unknown> }> = [
  { Type: StrategyArgs, base: { strategy: VALID.strategy } },
  { Type: ModelMetricsArgs, base: { strategy: VALID.strategy } },
  { Type: ActivateModelVersionArgs, base: { strategy: VALID.strategy, version: VALID.version } },
  { Type: ShadowModelVersionArgs, base: { strategy: VALID.strategy } },
  { Type: SymbolArgs, base: { symbol: VALID.symbol } },
  { Type: ConfidenceHistoryArgs, base: { symbol: VALID.symbol } },
  { Type: PredictionsArgs, base: { symbols: VALID.symbols } },
  { Type: ConfidenceTrendsArgs, base: { symbols: VALID.symbols } },
  { Type: SignalsArgs, base: { symbols: VALID.symbols } },
];

describe('domain args', () => {
  test('every class accepts its valid arguments', () => {
    for (const { Type, base } of CLASSES) assert.deepEqual(failures(Type, base), {}, Type.name);
  });

  test('a strategy, inherited or declared, is checked against STRATEGY_PATTERN in every class', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 45 }), fc.stringMatching(/^[a-z0-9-]{1,45}$/)), (strategy) => {
        const valid = STRATEGY_PATTERN.test(strategy);
        for (const { Type, base } of CLASSES) {
          const failed = failures(Type, { ...base, strategy }).strategy;
          assert.equal(failed === undefined, valid, `${Type.name} strategy ${JSON.stringify(strategy)}`);
          if (failed) assert.deepEqual(failed, ['strategy must be a lower-case name such as direction-1d']);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a symbol, alone or in a list, is checked against SYMBOL_PATTERN in every class that takes one', () => {
    const single = [SymbolArgs, ConfidenceHistoryArgs, ModelMetricsArgs];
    const lists = [PredictionsArgs, ConfidenceTrendsArgs, SignalsArgs];
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 12 }), fc.stringMatching(/^[A-Za-z0-9.-]{1,12}$/)), (symbol) => {
        const valid = SYMBOL_PATTERN.test(symbol);
        for (const Type of single) {
          const failed = failures(Type, { ...CLASSES.find((c) => c.Type === Type)!.base, symbol }).symbol;
          assert.equal(failed === undefined, valid, `${Type.name} symbol ${JSON.stringify(symbol)}`);
          if (failed) assert.match(failed[0]!, /^symbol must be an upper-case ticker such as AAPL or BRK\.B/);
        }
        for (const Type of lists) {
          const failed = failures(Type, { symbols: ['AAPL', symbol] }).symbols;
          assert.equal(failed === undefined, valid, `${Type.name} symbols [AAPL, ${JSON.stringify(symbol)}]`);
          if (failed) assert.match(failed[0]!, /^each of symbols must be an upper-case ticker/);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('symbol lists keep their own bounds: signals needs one and counts per subscription', () => {
    const many = Array.from({ length: 5_001 }, () => 'AAPL');
    assert.deepEqual(failures(PredictionsArgs, { symbols: many }), { symbols: ['symbols: at most 5000 per request'] });
    assert.deepEqual(failures(ConfidenceTrendsArgs, { symbols: many }), { symbols: ['symbols: at most 5000 per request'] });
    assert.deepEqual(failures(SignalsArgs, { symbols: many }), { symbols: ['symbols: at most 5000 per subscription'] });
    assert.deepEqual(failures(SignalsArgs, { symbols: [] }), { symbols: ['symbols: name at least one symbol'] });
    assert.deepEqual(failures(PredictionsArgs, { symbols: [] }), {});
  });

  test('versions: queries take the narrower name, activation and manifests the directory name', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 66 }), fc.stringMatching(/^[A-Za-z0-9._-]{1,66}$/)), (version) => {
        for (const Type of [ConfidenceHistoryArgs, ConfidenceTrendsArgs, ModelMetricsArgs]) {
          const base = CLASSES.find((c) => c.Type === Type)!.base;
          assert.equal(
            failures(Type, { ...base, version }).version === undefined,
            QUERIED_VERSION_PATTERN.test(version),
            `${Type.name} ${JSON.stringify(version)}`,
          );
        }
        for (const Type of [ActivateModelVersionArgs, ShadowModelVersionArgs]) {
          assert.equal(
            failures(Type, { strategy: VALID.strategy, version }).version === undefined,
            VERSION_PATTERN.test(version),
            `${Type.name} ${JSON.stringify(version)}`,
          );
        }
        assert.equal(manifestSchema.shape.version.safeParse(version).success, VERSION_PATTERN.test(version));
      }),
      { numRuns: 300 },
    );
    assert.equal(VERSION_PATTERN.test('.v1'), true);
    assert.equal(QUERIED_VERSION_PATTERN.test('.v1'), false);
  });

  test('optional names may be left out or null (GraphQL itself requires the non-null ones)', () => {
    assert.deepEqual(failures(SymbolArgs, { symbol: VALID.symbol, strategy: undefined }), {});
    assert.deepEqual(failures(SignalsArgs, { symbols: VALID.symbols, strategy: null }), {});
    assert.deepEqual(failures(ModelMetricsArgs, { strategy: VALID.strategy, symbol: null, version: undefined }), {});
    assert.deepEqual(failures(ShadowModelVersionArgs, { strategy: VALID.strategy, version: null }), {});
  });
});
