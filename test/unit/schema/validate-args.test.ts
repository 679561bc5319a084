import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ArgumentValidationError } from 'type-graphql';
import { IntervalArgs, PredictionsArgs } from '../../../src/modules/predictions/predictions.args.js';
import { validateArgs, validateItem } from '../../../src/schema/validate-args.js';

const args = <T extends object>(Type: new () => T, values: Partial<T>): T => Object.assign(new Type(), values);

describe('argument validation memo', () => {
  test('a remembered valid value does not make a different, invalid one pass, nor another class', () => {
    for (let i = 0; i < 3; i++) assert.deepEqual(validateItem(args(IntervalArgs, { level: 0.95 })), []);
    for (let i = 0; i < 2; i++) {
      const errors = validateItem(args(IntervalArgs, { level: 0.5 }));
      assert.equal(errors.length, 1);
      assert.match(Object.values(errors[0]!.constraints!)[0]!, /level must be one of/);
    }
    assert.deepEqual(validateItem(args(PredictionsArgs, { symbols: ['AAPL'] })), []);
    assert.equal(validateItem(args(PredictionsArgs, { symbols: ['aapl'] })).length, 1);
    assert.deepEqual(validateItem(args(PredictionsArgs, { symbols: ['AAPL'] })), []);
  });

  test('validateArgs throws ArgumentValidationError for an invalid item, remembered valid values or not', () => {
    assert.doesNotThrow(() => validateArgs(args(IntervalArgs, { level: 0.9 }), IntervalArgs, {} as never));
    assert.throws(
      () => validateArgs([args(IntervalArgs, { level: 0.9 }), args(IntervalArgs, { level: 2 })], IntervalArgs, {} as never),
      ArgumentValidationError,
    );
  });
});
