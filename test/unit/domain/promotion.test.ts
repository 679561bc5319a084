import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  breachesOf,
  decidePromotion,
  decisionFingerprint,
  type ComparisonEvidence,
  type HealthEvidence,
  type PromotionEvidence,
  type PromotionPolicySettings,
} from '../../../src/domain/promotion.js';

const SETTINGS: PromotionPolicySettings = {
  policy: 'auto',
  degradationAction: 'rollback',
  loss: 'brier',
  minDays: 120,
  level: 0.95,
  healthWindowDays: 90,
  minOutcomes: 200,
  coverageFloor: 0.9,
  maxEce: 0.2,
  maxDriftPsi: 3,
};

const healthy = (version: string, over: Partial<HealthEvidence> = {}): HealthEvidence => ({
  version,
  from: new Date('2019-04-01T00:00:00Z'),
  to: new Date('2019-06-28T00:00:00Z'),
  outcomes: 600,
  coverage: 0.95,
  ece: 0.03,
  drift: { feature: 'vol_20d', psi: 0.8 },
  driftNote: null,
  ...over,
});

/** A comparison the shadow wins: interval above 0, p tiny, 130 days. */
const shadowWins = (over: Partial<ComparisonEvidence> = {}): ComparisonEvidence => ({
  loss: 'brier',
  meanDifference: 0.01,
  interval: { low: 0.006, high: 0.014, level: 0.95 },
  pValue: 1e-6,
  days: 130,
  rows: 1300,
  mde80: 0.003,
  daysStillNeeded: 0,
  note: null,
  ...over,
});

const evidence = (over: Partial<PromotionEvidence> = {}): PromotionEvidence => ({
  strategy: 'direction-1d',
  active: 'v2',
  shadow: 'v1',
  comparison: shadowWins(),
  activeHealth: healthy('v2'),
  shadowHealth: healthy('v1'),
  rollback: { target: 'v0', deposedByPolicy: false, health: null },
  ...over,
});

describe('decidePromotion: promoting the shadow', () => {
  test('interval above 0, p below 1 − level, enough days and a healthy shadow: PROMOTE, switching under auto only', () => {
    const auto = decidePromotion(evidence(), SETTINGS);
    assert.deepEqual([auto.action, auto.reason, auto.toVersion, auto.switches], ['PROMOTE', 'SHADOW_BETTER', 'v1', true]);
    assert.match(
      auto.summary,
      /v1 has the lower Brier than v2 \(difference \(active − shadow\) \+0\.0100, 95% interval \[\+0\.00600, \+0\.0140\], p 1\.0e-6, 130 days\)/,
    );
    const manual = decidePromotion(evidence(), { ...SETTINGS, policy: 'manual' });
    assert.deepEqual([manual.action, manual.toVersion, manual.switches], ['PROMOTE', 'v1', false]);
    assert.match(manual.summary, /recommended, not switched/);
  });

  test('exactly minDays days is enough; one fewer holds with TOO_FEW_DAYS', () => {
    assert.equal(decidePromotion(evidence({ comparison: shadowWins({ days: 120 }) }), SETTINGS).action, 'PROMOTE');
    const d = decidePromotion(evidence({ comparison: shadowWins({ days: 119 }) }), SETTINGS);
    assert.deepEqual([d.action, d.reason, d.switches], ['HOLD', 'TOO_FEW_DAYS', false]);
    assert.match(d.summary, /119 day\(s\) of paired outcomes of v2 and v1; a promotion needs at least 120/);
  });

  test('no shadow, no interval yet, no difference, the active better: HOLD with the reason', () => {
    const cases: Array<[Partial<PromotionEvidence>, string]> = [
      [{ shadow: null, comparison: null, shadowHealth: null }, 'NO_SHADOW'],
      [{ comparison: shadowWins({ interval: null, note: 'the days span 5 calendar month(s)' }) }, 'NO_INTERVAL_YET'],
      [{ comparison: shadowWins({ interval: { low: -0.001, high: 0.02, level: 0.95 } }) }, 'NO_DIFFERENCE_YET'],
      // The interval excludes 0 but the test does not: both must agree.
      [{ comparison: shadowWins({ pValue: 0.2 }) }, 'NO_DIFFERENCE_YET'],
      [{ comparison: shadowWins({ meanDifference: -0.01, interval: { low: -0.014, high: -0.006, level: 0.95 } }) }, 'ACTIVE_BETTER'],
    ];
    for (const [over, reason] of cases) {
      const d = decidePromotion(evidence(over), SETTINGS);
      assert.deepEqual([d.action, d.reason, d.toVersion, d.switches], ['HOLD', reason, null, false], reason);
    }
  });

  test('a better shadow that breaks coverage or calibration is not promoted (SHADOW_UNHEALTHY); its input drift is not held against it', () => {
    const unhealthy = decidePromotion(evidence({ shadowHealth: healthy('v1', { ece: 0.31 }) }), SETTINGS);
    assert.deepEqual([unhealthy.action, unhealthy.reason], ['HOLD', 'SHADOW_UNHEALTHY']);
    assert.deepEqual(
      unhealthy.shadowBreaches.map((b) => [b.check, b.version, b.value]),
      [['calibration', 'v1', 0.31]],
    );
    const drifted = decidePromotion(evidence({ shadowHealth: healthy('v1', { drift: { feature: 'vol_20d', psi: 9 } }) }), SETTINGS);
    assert.equal(drifted.action, 'PROMOTE');
  });

  test('a better, healthy shadow is promoted even while the active version is degraded (promotion cures it); the breaches are kept', () => {
    const d = decidePromotion(evidence({ activeHealth: healthy('v2', { coverage: 0.5 }) }), SETTINGS);
    assert.deepEqual([d.action, d.toVersion], ['PROMOTE', 'v1']);
    assert.deepEqual(
      d.breaches.map((b) => b.check),
      ['coverage'],
    );
  });
});

describe('decidePromotion: a degraded active version', () => {
  const noShadow = { shadow: null, comparison: null, shadowHealth: null };

  test('coverage below the floor, ECE above its bound, an input drifted: each breaks it, and it is rolled back to the version it replaced', () => {
    for (const [health, check] of [
      [{ coverage: 0.89 }, 'coverage'],
      [{ ece: 0.25 }, 'calibration'],
      [{ drift: { feature: 'hl_range', psi: 3.5 } }, 'drift'],
    ] as const) {
      const d = decidePromotion(evidence({ ...noShadow, activeHealth: healthy('v2', health) }), SETTINGS);
      assert.deepEqual([d.action, d.reason, d.toVersion, d.switches], ['ROLLBACK', 'ACTIVE_DEGRADED', 'v0', true], check);
      assert.deepEqual(
        d.breaches.map((b) => b.check),
        [check],
      );
      assert.match(d.summary, /roll back to v0/);
    }
    const manual = decidePromotion(evidence({ ...noShadow, activeHealth: healthy('v2', { coverage: 0.5 }) }), {
      ...SETTINGS,
      policy: 'manual',
    });
    assert.deepEqual([manual.action, manual.toVersion, manual.switches], ['ROLLBACK', 'v0', false]);
  });

  test('the thresholds themselves do not break a version; fewer outcomes than minOutcomes are not judged; drift 0 is off', () => {
    assert.deepEqual(breachesOf(healthy('v2', { coverage: 0.9, ece: 0.2, drift: { feature: 'x', psi: 3 } }), SETTINGS, true), []);
    assert.deepEqual(breachesOf(healthy('v2', { outcomes: 199, coverage: 0.1, ece: 0.9 }), SETTINGS, true), []);
    assert.equal(breachesOf(healthy('v2', { outcomes: 200, coverage: 0.1 }), SETTINGS, true).length, 1);
    assert.deepEqual(breachesOf(healthy('v2', { drift: { feature: 'x', psi: 50 } }), { ...SETTINGS, maxDriftPsi: 0 }, true), []);
    assert.deepEqual(breachesOf(healthy('v2', { drift: null, driftNote: 'no bars', coverage: null, ece: null }), SETTINGS, true), []);
    const d = decidePromotion(
      evidence({ shadow: null, comparison: null, shadowHealth: null, activeHealth: healthy('v2', { outcomes: 10, coverage: 0 }) }),
      SETTINGS,
    );
    assert.deepEqual([d.action, d.reason], ['HOLD', 'NO_SHADOW']);
  });

  test('ALERT instead of a rollback: by policy, without a target, to a version the policy rolled back from, to a target that breaks the same check', () => {
    const broken = healthy('v2', { coverage: 0.6 });
    const cases: Array<[Partial<PromotionEvidence>, Partial<PromotionPolicySettings>, string]> = [
      [{}, { degradationAction: 'alert' }, 'ACTIVE_DEGRADED'],
      [{ rollback: { target: null, deposedByPolicy: false, health: null } }, {}, 'NO_ROLLBACK_TARGET'],
      [{ rollback: { target: 'v0', deposedByPolicy: true, health: null } }, {}, 'ROLLBACK_TARGET_DEPOSED'],
      [{ rollback: { target: 'v0', deposedByPolicy: false, health: healthy('v0', { coverage: 0.7 }) } }, {}, 'ROLLBACK_TARGET_UNHEALTHY'],
    ];
    for (const [over, settings, reason] of cases) {
      const d = decidePromotion(evidence({ ...noShadow, activeHealth: broken, ...over }), { ...SETTINGS, ...settings });
      assert.deepEqual([d.action, d.reason, d.toVersion, d.switches], ['ALERT', reason, null, false], reason);
      assert.match(d.summary, /v2 breaks: v2: 95% interval coverage 60\.0% < 90\.0% over 600 outcomes/);
    }
  });

  test('a target that breaks every check the active version breaks stops the rollback; one that leaves one cured does not', () => {
    const both = healthy('v2', { coverage: 0.6, drift: { feature: 'vol_20d', psi: 5 } });
    const drifted = healthy('v0', { outcomes: 0, coverage: null, ece: null, drift: { feature: 'vol_20d', psi: 5 } });
    // Coverage unknown for the target (no outcomes of it in the window): the rollback may cure it.
    const cures = decidePromotion(
      evidence({ ...noShadow, activeHealth: both, rollback: { target: 'v0', deposedByPolicy: false, health: drifted } }),
      SETTINGS,
    );
    assert.deepEqual([cures.action, cures.toVersion], ['ROLLBACK', 'v0']);
    // Drift alone, and the target drifts as much: nothing to cure.
    const driftOnly = healthy('v2', { drift: { feature: 'vol_20d', psi: 5 } });
    const none = decidePromotion(
      evidence({ ...noShadow, activeHealth: driftOnly, rollback: { target: 'v0', deposedByPolicy: false, health: drifted } }),
      SETTINGS,
    );
    assert.deepEqual([none.action, none.reason], ['ALERT', 'ROLLBACK_TARGET_UNHEALTHY']);
  });

  test('a target that breaks a different check than the active version does not stop the rollback', () => {
    const d = decidePromotion(
      evidence({
        ...noShadow,
        activeHealth: healthy('v2', { coverage: 0.6 }),
        rollback: { target: 'v0', deposedByPolicy: false, health: healthy('v0', { drift: { feature: 'vol_20d', psi: 4 } }) },
      }),
      SETTINGS,
    );
    assert.deepEqual([d.action, d.toVersion], ['ROLLBACK', 'v0']);
  });

  test('a degraded active version with a shadow not yet proven is still rolled back', () => {
    const d = decidePromotion(evidence({ comparison: shadowWins({ days: 30 }), activeHealth: healthy('v2', { ece: 0.4 }) }), SETTINGS);
    assert.deepEqual([d.action, d.toVersion], ['ROLLBACK', 'v0']);
  });
});

describe('decidePromotion: invariants over random evidence', () => {
  const health = (version: string) =>
    fc.record({
      version: fc.constant(version),
      from: fc.constant(new Date('2019-01-01T00:00:00Z')),
      to: fc.constant(new Date('2019-03-31T00:00:00Z')),
      outcomes: fc.integer({ min: 0, max: 2000 }),
      coverage: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
      ece: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
      drift: fc.option(fc.record({ feature: fc.constant('vol_20d'), psi: fc.double({ min: 0, max: 10, noNaN: true }) })),
      driftNote: fc.constant(null),
    });
  const comparison = fc.record({
    loss: fc.constant('brier' as const),
    meanDifference: fc.double({ min: -0.05, max: 0.05, noNaN: true }),
    half: fc.double({ min: 0, max: 0.05, noNaN: true }),
    hasInterval: fc.boolean(),
    pValue: fc.double({ min: 0, max: 1, noNaN: true }),
    days: fc.integer({ min: 0, max: 400 }),
  });
  const arbitrary = fc.record({
    withShadow: fc.boolean(),
    comparison,
    active: health('v2'),
    shadow: health('v1'),
    target: fc.option(fc.constant('v0')),
    deposed: fc.boolean(),
    policy: fc.constantFrom('manual' as const, 'auto' as const),
    action: fc.constantFrom('rollback' as const, 'alert' as const),
  });

  test('manual never switches; a switch is a PROMOTE to the shadow or a ROLLBACK to the target; PROMOTE exactly when the rules say', () => {
    fc.assert(
      fc.property(arbitrary, (a) => {
        const c = a.comparison;
        const e: PromotionEvidence = {
          strategy: 'direction-1d',
          active: 'v2',
          shadow: a.withShadow ? 'v1' : null,
          comparison: a.withShadow
            ? {
                loss: 'brier',
                meanDifference: c.meanDifference,
                interval: c.hasInterval ? { low: c.meanDifference - c.half, high: c.meanDifference + c.half, level: 0.95 } : null,
                pValue: c.pValue,
                days: c.days,
                rows: c.days * 10,
                mde80: null,
                daysStillNeeded: null,
                note: null,
              }
            : null,
          activeHealth: a.active,
          shadowHealth: a.withShadow ? a.shadow : null,
          rollback: { target: a.target, deposedByPolicy: a.deposed, health: null },
        };
        const settings = { ...SETTINGS, policy: a.policy, degradationAction: a.action };
        const d = decidePromotion(e, settings);
        if (a.policy === 'manual') assert.equal(d.switches, false);
        if (d.switches) assert.ok((d.action === 'PROMOTE' && d.toVersion === 'v1') || (d.action === 'ROLLBACK' && d.toVersion === 'v0'));
        // The promotion rule written out again, from the raw numbers.
        const s = a.shadow;
        const shadowHealthy = s.outcomes < 200 || ((s.coverage === null || s.coverage >= 0.9) && (s.ece === null || s.ece <= 0.2));
        const wins = a.withShadow && c.days >= 120 && c.hasInterval && c.pValue < 0.05 && c.meanDifference - c.half > 0;
        assert.equal(d.action === 'PROMOTE', wins && shadowHealthy, JSON.stringify({ a, d }));
        if (d.action === 'ROLLBACK') assert.ok(a.action === 'rollback' && a.target !== null && !a.deposed && d.breaches.length > 0);
        if (d.action === 'HOLD') assert.equal(d.breaches.length, 0);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decisionFingerprint', () => {
  test('the same evidence gives the same fingerprint; a new outcome day or another decision gives another', () => {
    const e = evidence();
    const d = decidePromotion(e, SETTINGS);
    assert.equal(decisionFingerprint(e, d), decisionFingerprint(evidence(), decidePromotion(evidence(), SETTINGS)));
    const later = evidence({ comparison: shadowWins({ days: 131, rows: 1310 }) });
    assert.notEqual(decisionFingerprint(later, decidePromotion(later, SETTINGS)), decisionFingerprint(e, d));
    const moved = evidence({ activeHealth: healthy('v2', { to: new Date('2019-07-01T00:00:00Z') }) });
    assert.notEqual(decisionFingerprint(moved, decidePromotion(moved, SETTINGS)), decisionFingerprint(e, d));
    const manual = decidePromotion(e, { ...SETTINGS, policy: 'manual' });
    // Same decision under another policy: the policy is recorded beside it, not in what it decided.
    assert.equal(decisionFingerprint(e, manual), decisionFingerprint(e, d));
  });

  test('a hold for want of a shadow is one decision however many outcomes arrive, until the active version changes', () => {
    const hold = (over: Partial<PromotionEvidence>) => {
      const e = evidence({ shadow: null, comparison: null, shadowHealth: null, ...over });
      return decisionFingerprint(e, decidePromotion(e, SETTINGS));
    };
    assert.equal(hold({}), hold({ activeHealth: healthy('v2', { outcomes: 900, to: new Date('2019-09-30T00:00:00Z') }) }));
    assert.notEqual(hold({}), hold({ active: 'v3', activeHealth: healthy('v3') }));
  });
});
