import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { configProblems } from '../../helpers/config.js';

describe('scheduled retraining configuration', () => {
  test('off by default, with the documented defaults; an empty RETRAIN_SCHEDULE is off too', () => {
    const expected = {
      schedule: undefined,
      timezone: 'America/New_York',
      strategies: undefined,
      family: 'logistic',
      timeoutMs: 3_600_000,
      maxMemoryMb: 2048,
    };
    assert.deepEqual(loadConfig({}).retrain, expected);
    assert.deepEqual(loadConfig({ RETRAIN_SCHEDULE: '' }).retrain, expected);
  });

  test('cron expressions croner reads are kept (whitespace normalized), with the other settings', () => {
    for (const [given, kept] of [
      ['30 18 * * 1-5', '30 18 * * 1-5'],
      ['  30   18 * * MON-FRI ', '30 18 * * MON-FRI'],
      ['*/5 * * * * *', '*/5 * * * * *'],
      ['0 0 12 * * 1-5 2030', '0 0 12 * * 1-5 2030'],
      ['@daily', '@daily'],
    ] as const) {
      assert.equal(loadConfig({ RETRAIN_SCHEDULE: given }).retrain.schedule, kept, given);
    }
    assert.deepEqual(
      loadConfig({
        RETRAIN_SCHEDULE: '@weekly',
        RETRAIN_TIMEZONE: 'Europe/London',
        RETRAIN_STRATEGIES: 'direction-5d, direction-1d,direction-5d',
        RETRAIN_FAMILY: 'gbt',
        RETRAIN_TIMEOUT_MS: '60000',
        RETRAIN_MAX_MEMORY_MB: '512',
      }).retrain,
      {
        schedule: '@weekly',
        timezone: 'Europe/London',
        strategies: ['direction-5d', 'direction-1d'],
        family: 'gbt',
        timeoutMs: 60_000,
        maxMemoryMb: 512,
      },
    );
  });

  test('a bad schedule fails at load, naming the variable, what is wrong and what was given', () => {
    const cases: ReadonlyArray<[string, RegExp]> = [
      ['nope', /expected a cron expression: 5 fields/],
      ['* * * *', /expected a cron expression/],
      ['* * * * * * * *', /expected a cron expression/],
      ['61 * * * *', /not a valid cron expression: .*minute/i],
      ['0 0 30 2 *', /no date matches it, so it would never fire/],
      ['2030-01-23T00:00:00', /expected a cron expression/],
      ['@reboot', /not a valid cron expression/],
      ['@sometimes', /not a valid cron expression/],
    ];
    for (const [given, message] of cases) {
      const problems = configProblems({ RETRAIN_SCHEDULE: given });
      assert.deepEqual(Object.keys(problems), ['RETRAIN_SCHEDULE'], given);
      assert.match(problems.RETRAIN_SCHEDULE!, message, given);
      assert.ok(problems.RETRAIN_SCHEDULE!.includes(`(got "${given}")`), problems.RETRAIN_SCHEDULE);
    }
  });

  test('every bad retraining variable is reported at once', () => {
    const problems = configProblems({
      RETRAIN_SCHEDULE: '99 * * * *',
      RETRAIN_TIMEZONE: 'Mars/Olympus_Mons',
      RETRAIN_STRATEGIES: 'Direction 1D',
      RETRAIN_FAMILY: 'svm',
      RETRAIN_TIMEOUT_MS: '10',
      RETRAIN_MAX_MEMORY_MB: 'lots',
    });
    assert.deepEqual(Object.keys(problems).sort(), [
      'RETRAIN_FAMILY',
      'RETRAIN_MAX_MEMORY_MB',
      'RETRAIN_SCHEDULE',
      'RETRAIN_STRATEGIES',
      'RETRAIN_TIMEOUT_MS',
      'RETRAIN_TIMEZONE',
    ]);
    assert.match(problems.RETRAIN_TIMEZONE!, /IANA time zone/);
    assert.match(problems.RETRAIN_STRATEGIES!, /strategy names such as direction-1d/);
    assert.match(problems.RETRAIN_TIMEOUT_MS!, /at least 1000/);
  });
});
