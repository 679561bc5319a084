/**
 * The promotion policy: from the evidence about a strategy's active and shadow versions, what to do.
 * Pure (no I/O, no clock); the models module gathers the evidence, carries the decision out and records
 * it (modules/models/promotion.loop.ts). Reasons and measurements: docs/decisions/promotion.md.
 *
 * In order:
 *
 * 1. **Promote** the shadow when, over at least `minDays` UTC days of paired realized outcomes (both
 *    versions predicted the same symbol and asOf), the interval of the daily mean loss difference
 *    (active − shadow) lies wholly above 0 and the Diebold–Mariano p-value is below 1 − level: the
 *    shadow has the lower loss, by both readings `compareModels` gives (its verdict B_BETTER), and it
 *    does not itself break the coverage or calibration checks. Input drift is not held against it: both
 *    versions read the same features from the same bars, so it cannot tell them apart.
 * 2. Otherwise, when the active version breaks a check (coverage below the floor, ECE above its bound,
 *    an input's PSI above its bound), **roll back** to the version it replaced, if the degradation
 *    action is `rollback`, there is one, the policy itself did not roll back from it before (no
 *    flip-flopping between two bad versions), and a rollback cures something: the target does not
 *    break every check the active version breaks, on the same window, where that can be known
 *    (coverage and calibration from its own outcomes there, if any; drift always); else **alert**.
 * 3. Otherwise **hold**, saying why (no shadow, too few days, no interval yet, no difference yet, the
 *    active version is the better one, the shadow is unhealthy).
 *
 * With the `manual` policy the decision is the same, and nothing switches: it is a recommendation.
 */

export type PromotionPolicy = 'manual' | 'auto';
export type DegradationAction = 'rollback' | 'alert';
export type PromotionLoss = 'brier' | 'logLoss';

export type PromotionAction = 'PROMOTE' | 'ROLLBACK' | 'ALERT' | 'HOLD';

export type PromotionReason =
  /** PROMOTE: the shadow has the lower loss, by interval and test, and is healthy. */
  | 'SHADOW_BETTER'
  /** ROLLBACK or ALERT: the active version breaks a check (see `breaches`). */
  | 'ACTIVE_DEGRADED'
  /** ALERT: degraded, but no earlier activation is recorded to roll back to. */
  | 'NO_ROLLBACK_TARGET'
  /** ALERT: degraded, but the policy already rolled back from the earlier version once. */
  | 'ROLLBACK_TARGET_DEPOSED'
  /** ALERT: degraded, but the earlier version breaks every check the active one breaks, on the same window. */
  | 'ROLLBACK_TARGET_UNHEALTHY'
  /** HOLD: nothing runs in shadow. */
  | 'NO_SHADOW'
  /** HOLD: fewer paired days than `minDays`. */
  | 'TOO_FEW_DAYS'
  /** HOLD: enough days, but they span too few calendar months for the interval. */
  | 'NO_INTERVAL_YET'
  /** HOLD: the interval or the test does not exclude 0. */
  | 'NO_DIFFERENCE_YET'
  /** HOLD: the active version has the lower loss, by interval and test. */
  | 'ACTIVE_BETTER'
  /** HOLD: the shadow is better but breaks a coverage or calibration check itself. */
  | 'SHADOW_UNHEALTHY';

/** What a decision is judged against: the documented thresholds (PROMOTION_* settings). */
export interface PromotionThresholds {
  readonly loss: PromotionLoss;
  /** Fewest UTC days of paired outcomes before a promotion. */
  readonly minDays: number;
  /** Two-sided level of the interval; the test's size is 1 − level. */
  readonly level: number;
  /** Calendar days of asOf, ending at the version's latest outcome, the health checks read. */
  readonly healthWindowDays: number;
  /** Fewest outcomes in that window for coverage and calibration to be judged. */
  readonly minOutcomes: number;
  /** Realized 95% interval coverage below this breaks a version. */
  readonly coverageFloor: number;
  /** Realized ECE above this breaks a version. */
  readonly maxEce: number;
  /** An input's PSI above this breaks a version; 0: not checked. */
  readonly maxDriftPsi: number;
}

export interface PromotionPolicySettings extends PromotionThresholds {
  readonly policy: PromotionPolicy;
  readonly degradationAction: DegradationAction;
}

/** The comparison of the active (a) and shadow (b) versions on the policy's loss, as compareModels gives it. */
export interface ComparisonEvidence {
  readonly loss: PromotionLoss;
  /** Mean over days of the daily mean loss difference active − shadow: positive favours the shadow. */
  readonly meanDifference: number | null;
  readonly interval: { readonly low: number; readonly high: number; readonly level: number } | null;
  readonly pValue: number | null;
  readonly days: number;
  readonly rows: number;
  readonly mde80: number | null;
  readonly daysStillNeeded: number | null;
  /** Why a figure is missing, from compareModels. */
  readonly note: string | null;
}

/** A version's realized health over its window (asOf from `from` to `to`, both UTC days). */
export interface HealthEvidence {
  readonly version: string;
  /** The window; null when the version has no realized outcome yet. */
  readonly from: Date | null;
  readonly to: Date | null;
  /** Realized outcomes in the window. */
  readonly outcomes: number;
  /** Share inside the 95% interval; null without outcomes that have one. */
  readonly coverage: number | null;
  readonly ece: number | null;
  /** The input with the largest PSI over the window; null when drift was not measured (see driftNote). */
  readonly drift: { readonly feature: string; readonly psi: number } | null;
  /** Why drift is null, when it is and was asked for. */
  readonly driftNote: string | null;
}

export interface RollbackEvidence {
  /** The version the latest activation replaced; null when none is recorded. */
  readonly target: string | null;
  /** Whether an earlier rollback by this policy replaced `target` (rolling back to it would flip-flop). */
  readonly deposedByPolicy: boolean;
  /** The target's health over the active version's window, when it was measured. */
  readonly health: HealthEvidence | null;
}

export interface PromotionEvidence {
  readonly strategy: string;
  readonly active: string;
  readonly shadow: string | null;
  /** Null without a shadow. */
  readonly comparison: ComparisonEvidence | null;
  readonly activeHealth: HealthEvidence;
  /** Null without a shadow. */
  readonly shadowHealth: HealthEvidence | null;
  readonly rollback: RollbackEvidence;
}

export type HealthCheck = 'coverage' | 'calibration' | 'drift';

/** One check a version breaks: what was measured, against which threshold. */
export interface Breach {
  readonly check: HealthCheck;
  readonly version: string;
  readonly value: number;
  readonly threshold: number;
  readonly detail: string;
}

export interface PromotionDecision {
  readonly action: PromotionAction;
  readonly reason: PromotionReason;
  /** One sentence a person can read: what was decided and why, with the figures. */
  readonly summary: string;
  /** The version serving after the decision if it is carried out (PROMOTE: the shadow; ROLLBACK: the target); null otherwise. */
  readonly toVersion: string | null;
  /** Whether the serving version is to change: a PROMOTE or ROLLBACK under the `auto` policy. */
  readonly switches: boolean;
  /** Checks the active version breaks (empty when healthy or not judged). */
  readonly breaches: readonly Breach[];
  /** Checks the shadow breaks, when it was judged for a promotion. */
  readonly shadowBreaches: readonly Breach[];
}

/**
 * The checks `health` breaks. Coverage and calibration only with at least `minOutcomes` outcomes in the
 * window; drift only when `withDrift` and the threshold is on (0 turns it off).
 */
export function breachesOf(health: HealthEvidence, thresholds: PromotionThresholds, withDrift: boolean): Breach[] {
  const out: Breach[] = [];
  const { version } = health;
  const judged = health.outcomes >= thresholds.minOutcomes;
  if (judged && health.coverage !== null && health.coverage < thresholds.coverageFloor) {
    out.push({
      check: 'coverage',
      version,
      value: health.coverage,
      threshold: thresholds.coverageFloor,
      detail: `${version}: 95% interval coverage ${percent(health.coverage)} < ${percent(thresholds.coverageFloor)} over ${health.outcomes} outcomes`,
    });
  }
  if (judged && health.ece !== null && health.ece > thresholds.maxEce) {
    out.push({
      check: 'calibration',
      version,
      value: health.ece,
      threshold: thresholds.maxEce,
      detail: `${version}: ECE ${fixed(health.ece, 3)} > ${fixed(thresholds.maxEce, 3)} over ${health.outcomes} outcomes`,
    });
  }
  if (withDrift && thresholds.maxDriftPsi > 0 && health.drift && health.drift.psi > thresholds.maxDriftPsi) {
    out.push({
      check: 'drift',
      version,
      value: health.drift.psi,
      threshold: thresholds.maxDriftPsi,
      detail: `${version}: input ${health.drift.feature} drifted, PSI ${fixed(health.drift.psi, 2)} > ${fixed(thresholds.maxDriftPsi, 2)}`,
    });
  }
  return out;
}

/** The decision for one strategy: see the file comment for the rules, in order. */
export function decidePromotion(evidence: PromotionEvidence, settings: PromotionPolicySettings): PromotionDecision {
  const breaches = breachesOf(evidence.activeHealth, settings, true);
  const promotion = promotionCase(evidence, settings);
  const auto = settings.policy === 'auto';
  if (promotion.promote) {
    return {
      action: 'PROMOTE',
      reason: 'SHADOW_BETTER',
      summary: `${promotion.summary}${breaches.length ? `; the active version also breaks: ${details(breaches)}` : ''}${auto ? '' : ' (manual policy: recommended, not switched)'}`,
      toVersion: evidence.shadow,
      switches: auto,
      breaches,
      shadowBreaches: promotion.shadowBreaches,
    };
  }
  if (breaches.length > 0) return degraded(evidence, settings, breaches, promotion.shadowBreaches);
  return {
    action: 'HOLD',
    reason: promotion.reason,
    summary: promotion.summary,
    toVersion: null,
    switches: false,
    breaches,
    shadowBreaches: promotion.shadowBreaches,
  };
}

/** Whether the shadow is to be promoted, else why not (a HOLD reason). */
function promotionCase(
  evidence: PromotionEvidence,
  settings: PromotionPolicySettings,
):
  | { promote: true; summary: string; shadowBreaches: Breach[] }
  | { promote: false; reason: PromotionReason; summary: string; shadowBreaches: Breach[] } {
  const { shadow, comparison: c, active } = evidence;
  const hold = (reason: PromotionReason, summary: string, shadowBreaches: Breach[] = []) => ({
    promote: false as const,
    reason,
    summary,
    shadowBreaches,
  });
  if (!shadow || !c) return hold('NO_SHADOW', `no shadow version runs beside ${active}: nothing to promote`);
  const loss = c.loss === 'brier' ? 'Brier' : 'log loss';
  const figures = comparisonFigures(c);
  if (c.days < settings.minDays) {
    return hold(
      'TOO_FEW_DAYS',
      `${c.days} day(s) of paired outcomes of ${active} and ${shadow}; a promotion needs at least ${settings.minDays}${figures ? ` (${figures})` : ''}`,
    );
  }
  if (c.interval === null || c.meanDifference === null || c.pValue === null) {
    return hold(
      'NO_INTERVAL_YET',
      `${c.days} days of paired outcomes, but no interval of the ${loss} difference yet: ${c.note ?? 'not computable'}`,
    );
  }
  const alpha = 1 - settings.level;
  const significant = c.pValue < alpha;
  if (significant && c.interval.high < 0 && c.meanDifference < 0) {
    return hold('ACTIVE_BETTER', `the active version ${active} has the lower ${loss} than ${shadow} (${figures})`);
  }
  if (!(significant && c.interval.low > 0 && c.meanDifference > 0)) {
    return hold(
      'NO_DIFFERENCE_YET',
      `no ${loss} difference between ${active} and ${shadow} established yet (${figures}; needs the interval above 0 and p < ${fixed(alpha, 3)})`,
    );
  }
  const shadowBreaches = evidence.shadowHealth ? breachesOf(evidence.shadowHealth, settings, false) : [];
  if (shadowBreaches.length) {
    return hold('SHADOW_UNHEALTHY', `${shadow} has the lower ${loss} (${figures}) but breaks: ${details(shadowBreaches)}`, shadowBreaches);
  }
  return { promote: true, summary: `${shadow} has the lower ${loss} than ${active} (${figures}): promote ${shadow}`, shadowBreaches };
}

function degraded(
  evidence: PromotionEvidence,
  settings: PromotionPolicySettings,
  breaches: Breach[],
  shadowBreaches: Breach[],
): PromotionDecision {
  const { active, rollback } = evidence;
  const broken = `${active} breaks: ${details(breaches)}`;
  const alert = (reason: PromotionReason, why: string): PromotionDecision => ({
    action: 'ALERT',
    reason,
    summary: `${broken}; ${why}`,
    toVersion: null,
    switches: false,
    breaches,
    shadowBreaches,
  });
  if (settings.degradationAction === 'alert') return alert('ACTIVE_DEGRADED', 'DEGRADATION_ACTION=alert: alerting, not rolling back');
  if (!rollback.target) return alert('NO_ROLLBACK_TARGET', 'no earlier activation is recorded to roll back to');
  if (rollback.deposedByPolicy)
    return alert('ROLLBACK_TARGET_DEPOSED', `the policy already rolled back from ${rollback.target} once; not rolling back to it again`);
  // A rollback is worth making when it cures at least one broken check: not when the target breaks
  // every check the active version breaks (input drift, read from the same bars, typically does).
  const targetBreaches = rollback.health ? breachesOf(rollback.health, settings, true) : [];
  if (breaches.every((a) => targetBreaches.some((b) => b.check === a.check)))
    return alert(
      'ROLLBACK_TARGET_UNHEALTHY',
      `the earlier version breaks the same checks on the same window, so a rollback would cure none: ${details(targetBreaches)}`,
    );
  const auto = settings.policy === 'auto';
  return {
    action: 'ROLLBACK',
    reason: 'ACTIVE_DEGRADED',
    summary: `${broken}; roll back to ${rollback.target}${auto ? '' : ' (manual policy: recommended, not switched)'}`,
    toVersion: rollback.target,
    switches: auto,
    breaches,
    shadowBreaches,
  };
}

/** "Brier difference +0.0123 [0.0100, 0.0150] (95%), p 0.0001, 130 days" or '' without figures. */
function comparisonFigures(c: ComparisonEvidence): string {
  if (c.meanDifference === null) return '';
  const parts = [`difference (active − shadow) ${signed(c.meanDifference)}`];
  if (c.interval) parts.push(`${Math.round(c.interval.level * 100)}% interval [${signed(c.interval.low)}, ${signed(c.interval.high)}]`);
  if (c.pValue !== null) parts.push(`p ${c.pValue < 1e-4 ? c.pValue.toExponential(1) : fixed(c.pValue, 4)}`);
  parts.push(`${c.days} days`);
  return parts.join(', ');
}

function details(breaches: readonly Breach[]): string {
  return breaches.map((b) => b.detail).join('; ');
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toPrecision(3)}`;
}

function fixed(x: number, digits: number): string {
  return x.toFixed(digits);
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * What makes two evaluations the same decision: the action and reason, the versions, and how much
 * evidence there was (paired days and rows, each version's window and outcomes). A re-evaluation that
 * finds no new outcome gives the same fingerprint and is not recorded again. A hold for want of a shadow
 * says the same however many outcomes arrive, so it is one decision until something else changes.
 */
export function decisionFingerprint(evidence: PromotionEvidence, decision: PromotionDecision): string {
  if (decision.reason === 'NO_SHADOW') return JSON.stringify([decision.action, decision.reason, evidence.active]);
  const health = (h: HealthEvidence | null) => (h ? [h.version, h.to?.toISOString() ?? null, h.outcomes] : null);
  return JSON.stringify([
    decision.action,
    decision.reason,
    decision.toVersion,
    evidence.active,
    evidence.shadow,
    evidence.comparison ? [evidence.comparison.days, evidence.comparison.rows] : null,
    health(evidence.activeHealth),
    health(evidence.shadowHealth),
  ]);
}
