import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { manifestSchema } from '../../../src/domain/manifest.js';
import { featureStats } from '../../../src/training/feature-stats.js';
import { projectRoot } from '../../helpers/process.js';

describe('featureStats', () => {
  test('mean, sample deviation and nearest-rank quantiles per column, over the selected rows only', () => {
    // Two columns; rows 0..99 selected hold 1..100 and 2·(1..100); row 100 (not selected) is an outlier.
    const x = new Float64Array(101 * 2);
    for (let i = 0; i < 100; i++) x.set([i + 1, 2 * (i + 1)], i * 2);
    x.set([1e9, -1e9], 200);
    const rows = Uint32Array.from({ length: 100 }, (_, i) => 99 - i); // order must not matter
    const stats = featureStats(x, rows, ['a', 'b'], { from: '2000-01-01', to: '2000-12-31' });
    assert.equal(stats.samples, 100);
    assert.deepEqual(stats.period, { from: '2000-01-01', to: '2000-12-31' });
    assert.equal(stats.features.a!.mean, 50.5);
    assert.equal(stats.features.b!.mean, 101);
    assert.ok(Math.abs(stats.features.a!.std - Math.sqrt((100 * 101) / 12)) < 1e-9); // var of 1..n is n(n+1)/12
    assert.deepEqual(stats.features.a!.quantiles, {
      '0.01': 1,
      '0.05': 5,
      '0.1': 10,
      '0.25': 25,
      '0.5': 50,
      '0.75': 75,
      '0.9': 90,
      '0.95': 95,
      '0.99': 99,
    });
    assert.equal(stats.features.b!.quantiles['0.99'], 198);
  });

  test('refuses an empty selection instead of inventing statistics', () => {
    assert.throws(() => featureStats(new Float64Array(2), new Uint32Array(0), ['a', 'b'], { from: '', to: '' }), /at least one row/);
  });
});

describe('manifest featureStats', () => {
  const manifest = JSON.parse(readFileSync(path.join(projectRoot, 'models/direction-1d/v1/manifest.json'), 'utf8'));

  test('is optional: a manifest without it still validates', () => {
    const { featureStats: _omitted, ...rest } = manifest;
    assert.equal(manifestSchema.safeParse(rest).success, true);
  });

  test('each feature needs at least the median', () => {
    const features = { ...manifest.featureStats.features, ret_1d: { mean: 0, std: 1, quantiles: { '0.25': -1 } } };
    assert.equal(manifestSchema.safeParse({ ...manifest, featureStats: { ...manifest.featureStats, features } }).success, false);
  });
});

describe('manifest driftReference', () => {
  const manifest = JSON.parse(readFileSync(path.join(projectRoot, 'models/direction-1d/v1/manifest.json'), 'utf8'));
  const histogram = { edges: [-1, 0, 1], proportions: [0.25, 0.25, 0.25, 0.25] };
  const reference = {
    period: { from: '2000-01-01', to: '2014-12-31' },
    samples: 100,
    bins: 4,
    features: { ret_1d: histogram },
    probability: histogram,
  };

  test('is optional (older manifests lack it) and validates when present (the committed ones carry it)', () => {
    assert.ok(manifest.driftReference, 'the committed manifest carries the training distribution');
    assert.equal(manifestSchema.safeParse(manifest).success, true);
    const { driftReference: _written, ...older } = manifest;
    assert.equal(manifestSchema.safeParse(older).success, true);
    assert.equal(manifestSchema.safeParse({ ...manifest, driftReference: reference }).success, true);
  });

  test('refuses histograms that are not one: unordered edges, shares not summing to 1, a share missing', () => {
    for (const bad of [
      { edges: [0, -1, 1], proportions: [0.25, 0.25, 0.25, 0.25] },
      { edges: [-1, 0, 1], proportions: [0.25, 0.25, 0.25, 0.2] },
      { edges: [-1, 0, 1], proportions: [0.5, 0.5] },
      { edges: [-1, 0, 1], proportions: [1.25, -0.25, 0, 0] },
    ]) {
      assert.equal(
        manifestSchema.safeParse({ ...manifest, driftReference: { ...reference, probability: bad } }).success,
        false,
        JSON.stringify(bad),
      );
    }
  });
});
