import { promotionDecisionId } from '../../domain/entity-ids.js';
import type { HealthEvidence } from '../../domain/promotion.js';
import type { StoredDecision } from './promotion.repository.js';
import { PromotionAction, PromotionPolicy, PromotionReason, type PromotionDecision, type PromotionHealth } from './promotion.type.js';

/** A recorded decision as `Strategy.promotions` serves it. */
export function promotionView(stored: StoredDecision): PromotionDecision {
  const c = stored.comparison;
  return {
    id: promotionDecisionId(stored.strategy, stored.id),
    time: stored.time,
    strategy: stored.strategy,
    actor: stored.actor,
    policy: stored.policy === 'auto' ? PromotionPolicy.AUTO : PromotionPolicy.MANUAL,
    action: PromotionAction[stored.action],
    reason: PromotionReason[stored.reason],
    summary: stored.summary,
    applied: stored.applied,
    error: stored.error,
    fromVersion: stored.fromVersion,
    toVersion: stored.toVersion,
    shadowVersion: stored.shadowVersion,
    comparison: c && {
      loss: c.loss,
      meanDifference: c.meanDifference,
      interval: c.interval && { low: c.interval.low, high: c.interval.high, level: c.interval.level },
      pValue: c.pValue,
      days: c.days,
      rows: c.rows,
      mde80: c.mde80,
      daysStillNeeded: c.daysStillNeeded,
      note: c.note,
    },
    activeHealth: healthView(stored.activeHealth)!,
    shadowHealth: healthView(stored.shadowHealth),
    rollbackTarget: stored.rollbackTarget,
    rollbackTargetHealth: healthView(stored.rollbackTargetHealth),
    breaches: stored.breaches.map((b) => ({ ...b })),
    shadowBreaches: stored.shadowBreaches.map((b) => ({ ...b })),
    thresholds: { ...stored.thresholds, degradationAction: stored.degradationAction },
  };
}

function healthView(health: HealthEvidence | null): PromotionHealth | null {
  if (!health) return null;
  return {
    version: health.version,
    from: health.from,
    to: health.to,
    outcomes: health.outcomes,
    coverage: health.coverage,
    ece: health.ece,
    driftFeature: health.drift?.feature ?? null,
    driftPsi: health.drift?.psi ?? null,
    driftNote: health.driftNote,
  };
}
