import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AUTO_BUCKETS, autoBucket, bucketCount, parseSpan, SpanError } from '../../../src/modules/history/bucket.js';
import { MAX_BUCKETS } from '../../../src/modules/history/history-query.service.js';

describe('time spans for buckets and windows', () => {
  test('accepts "<count> <unit>" in singular, plural, abbreviated and any case, and normalizes it', () => {
    const cases: Array<[string, string, number]> = [
      ['5 minutes', '5 minutes', 300_000],
      ['1 hour', '1 hour', 3_600_000],
      ['1 day', '1 day', 86_400_000],
      ['2 weeks', '2 weeks', 1_209_600_000],
      ['30 seconds', '30 seconds', 30_000],
      ['  15  MINUTES ', '15 minutes', 900_000],
      ['1 Minute', '1 minute', 60_000],
      ['15min', '15 minutes', 900_000],
      ['6 h', '6 hours', 21_600_000],
      ['7d', '7 days', 604_800_000],
      ['1 hours', '1 hour', 3_600_000],
    ];
    for (const [input, text, ms] of cases) assert.deepEqual(parseSpan(input), { text, ms }, input);
  });

  test('refuses what is not a fixed-length span, with a message naming the argument and the units', () => {
    for (const input of [
      '',
      'hour',
      '5',
      '1 month',
      '2 years',
      '1.5 hours',
      '-1 hour',
      '5 fortnights',
      '1 hour 30 minutes',
      '1e3 seconds',
      '10 ms',
    ]) {
      assert.throws(
        () => parseSpan(input, 'bucket'),
        (e: Error) => e instanceof SpanError && /^bucket /.test(e.message) && /second, minute, hour, day, week/.test(e.message),
        input,
      );
    }
    assert.throws(() => parseSpan('0 minutes', 'bucket'), /at least 1 minute/);
    assert.throws(() => parseSpan('3661 days', 'window'), /longer than the limit of 3660 days/);
    assert.doesNotThrow(() => parseSpan('3660 days'));
  });

  test('the default bucket is the smallest choice giving at most 1,000 buckets', () => {
    const day = 86_400_000;
    assert.equal(autoBucket(10 * 60_000).text, '1 minute');
    assert.equal(autoBucket(day).text, '5 minutes'); // 288
    assert.equal(autoBucket(7 * day).text, '15 minutes'); // 672
    assert.equal(autoBucket(30 * day).text, '1 hour'); // 720
    assert.equal(autoBucket(365 * day).text, '1 day');
    assert.equal(autoBucket(100 * 365 * day).text, '1 week', 'beyond every choice: the largest');
    for (const days of [1, 7, 30, 200, 365, 3000]) {
      const bucket = autoBucket(days * day);
      if (bucket.text !== '1 week') assert.ok(bucketCount(0, days * day, bucket.ms) <= AUTO_BUCKETS + 1);
      assert.ok(bucketCount(0, days * day, bucket.ms) <= MAX_BUCKETS, 'a default never trips the limit for ranges up to ~190 years');
    }
  });

  test('bucketCount counts the buckets a range touches', () => {
    assert.equal(bucketCount(0, 0, 60_000), 1);
    assert.equal(bucketCount(0, 59_999, 60_000), 1);
    assert.equal(bucketCount(0, 60_000, 60_000), 2);
    assert.equal(bucketCount(0, 10_000 * 60_000 - 1, 60_000), 10_000);
  });
});
