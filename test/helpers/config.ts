import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/index.js';

/** The problems loadConfig reports for `env`, by variable; fails the test when it accepts `env`. */
export function configProblems(env: Record<string, string>): Record<string, string> {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, 'expected a ConfigError');
    return Object.fromEntries(error.problems.map((p) => [p.variable, p.problem]));
  }
  assert.fail('expected loadConfig to throw');
}
