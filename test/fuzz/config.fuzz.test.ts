import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { CONFIG_DOCS, ConfigError, loadConfig } from '../../src/config/index.js';

/**
 * Any environment, however wrong, gives either a config or a ConfigError that names only variables
 * it was given, and never echoes a URL's text (which may hold a password).
 */
const NAMES = CONFIG_DOCS.map((d) => d.name);
const value = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom(
    'true',
    'false',
    'yes',
    '0',
    '',
    ' ',
    '-1',
    '1e9',
    'NaN',
    'Infinity',
    'production',
    'postgres://u:hunter2@h:1/db',
    'redis://:hunter2@x:6379',
  ),
  fc.webUrl().map((url) => url.replace(/^https?:/, 'postgres:')),
);

describe('config fuzz', () => {
  test('every environment is a config or a ConfigError naming the bad variables', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...NAMES), value, { maxKeys: 8 }), (environment) => {
        try {
          const config = loadConfig(environment);
          assert.equal(typeof config.port, 'number');
          assert.ok(Object.isFrozen(config));
        } catch (error) {
          assert.ok(error instanceof ConfigError, `only ConfigError escapes, got ${String(error)}`);
          assert.ok(error.problems.length > 0);
          for (const { variable } of error.problems) assert.ok(variable in environment, `${variable} was given`);
          assert.doesNotMatch(error.message, /hunter2/, 'no password is echoed');
        }
      }),
      { numRuns: 500 },
    );
  });
});
