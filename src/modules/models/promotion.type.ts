import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum PromotionAction {
  PROMOTE = 'PROMOTE',
  ROLLBACK = 'ROLLBACK',
  ALERT = 'ALERT',
  HOLD = 'HOLD',
}
registerEnumType(PromotionAction, {
  name: 'PromotionAction',
  description:
    'What the promotion policy concluded: PROMOTE the shadow, ROLLBACK to the version the active one replaced, ALERT (degraded, not rolled back), or HOLD (nothing to do; `reason` says why)',
});

export enum PromotionReason {
  SHADOW_BETTER = 'SHADOW_BETTER',
  ACTIVE_DEGRADED = 'ACTIVE_DEGRADED',
  NO_ROLLBACK_TARGET = 'NO_ROLLBACK_TARGET',
  ROLLBACK_TARGET_DEPOSED = 'ROLLBACK_TARGET_DEPOSED',
  ROLLBACK_TARGET_UNHEALTHY = 'ROLLBACK_TARGET_UNHEALTHY',
  NO_SHADOW = 'NO_SHADOW',
  TOO_FEW_DAYS = 'TOO_FEW_DAYS',
  NO_INTERVAL_YET = 'NO_INTERVAL_YET',
  NO_DIFFERENCE_YET = 'NO_DIFFERENCE_YET',
  ACTIVE_BETTER = 'ACTIVE_BETTER',
  SHADOW_UNHEALTHY = 'SHADOW_UNHEALTHY',
}
registerEnumType(PromotionReason, {
  name: 'PromotionReason',
  description: 'Why the policy decided what it did (README, Model lifecycle: the promotion loop)',
  valuesConfig: {
    SHADOW_BETTER: { description: 'PROMOTE: the shadow has the lower loss (interval above 0 and p below 1 − level over enough days) and is healthy' },
    ACTIVE_DEGRADED: { description: 'ROLLBACK, or ALERT with DEGRADATION_ACTION=alert: the active version breaks a check (see `breaches`)' },
    NO_ROLLBACK_TARGET: { description: 'ALERT: degraded, and no earlier activation is recorded to roll back to' },
    ROLLBACK_TARGET_DEPOSED: { description: 'ALERT: degraded, and the policy already rolled back from the earlier version once (no flip-flopping)' },
    ROLLBACK_TARGET_UNHEALTHY: { description: 'ALERT: degraded, and the earlier version breaks the same check on the same window' },
    NO_SHADOW: { description: 'HOLD: no version runs in shadow' },
    TOO_FEW_DAYS: { description: 'HOLD: fewer days of paired outcomes than PROMOTION_MIN_DAYS' },
    NO_INTERVAL_YET: { description: 'HOLD: enough days, but too few calendar months for the interval of the difference' },
    NO_DIFFERENCE_YET: { description: 'HOLD: the interval or the test does not exclude 0' },
    ACTIVE_BETTER: { description: 'HOLD: the active version has the lower loss' },
    SHADOW_UNHEALTHY: { description: 'HOLD: the shadow has the lower loss but breaks a coverage or calibration check (see `shadowBreaches`)' },
  },
});

export enum PromotionPolicy {
  MANUAL = 'MANUAL',
  AUTO = 'AUTO',
}
registerEnumType(PromotionPolicy, {
  name: 'PromotionPolicy',
  description: 'PROMOTION_POLICY when the decision was made: MANUAL records recommendations only, AUTO also switches',
});

@ObjectType({ description: 'An interval of the mean loss difference (active − shadow).', simpleResolvers: true })
export class PromotionInterval {
  @Field(() => Float, { description: 'Lower end' }) low!: number;
  @Field(() => Float, { description: 'Upper end' }) high!: number;
  @Field(() => Float, { description: 'Two-sided level, e.g. 0.95' }) level!: number;
}

@ObjectType({
  description: 'The active and shadow versions compared on the policy’s loss over their paired realized outcomes (compareModels with a = active, b = shadow).',
  simpleResolvers: true,
})
export class PromotionComparison {
  @Field(() => String, { description: '`brier` or `logLoss` (PROMOTION_LOSS)' }) loss!: string;
  @Field(() => Float, {
    nullable: true,
    description: 'Mean over days of the daily mean loss difference active − shadow: positive favours the shadow; null without paired rows',
  })
  meanDifference!: number | null;
  @Field(() => PromotionInterval, { nullable: true, description: 'Interval of meanDifference (month-block bootstrap); null with too few calendar months' })
  interval!: PromotionInterval | null;
  @Field(() => Float, { nullable: true, description: 'Two-sided Diebold–Mariano p-value (Newey–West variance)' }) pValue!: number | null;
  @Field(() => Int, { description: 'UTC days of paired realized outcomes' }) days!: number;
  @Field(() => Int, { description: 'Paired rows (same symbol and asOf, both versions, realized outcome)' }) rows!: number;
  @Field(() => Float, { nullable: true, description: 'Minimum detectable effect at 80% power for these days' }) mde80!: number | null;
  @Field(() => Int, { nullable: true, description: 'More days needed to detect the observed difference at 80% power' }) daysStillNeeded!: number | null;
  @Field(() => String, { nullable: true, description: 'Why a figure is missing, from compareModels' }) note!: string | null;
}

@ObjectType({ description: 'A version’s realized health over a window of asOf: what the degradation checks read.', simpleResolvers: true })
export class PromotionHealth {
  @Field(() => String, { description: 'The model version' }) version!: string;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'Start of the window; null when the version has no realized outcome yet' })
  from!: Date | null;
  @Field(() => DateTimeISOResolver, { nullable: true, description: 'End of the window: the version’s latest realized outcome (asOf)' })
  to!: Date | null;
  @Field(() => Int, { description: 'Realized outcomes in the window; coverage and calibration are judged from PROMOTION_MIN_OUTCOMES' })
  outcomes!: number;
  @Field(() => Float, { nullable: true, description: 'Share of outcomes inside the 95% interval' }) coverage!: number | null;
  @Field(() => Float, { nullable: true, description: 'Expected calibration error, 10 equal-width bins' }) ece!: number | null;
  @Field(() => String, { nullable: true, description: 'The model input with the largest PSI over the window; null when drift was not measured' })
  driftFeature!: string | null;
  @Field(() => Float, { nullable: true, description: 'That input’s PSI against the version’s training distribution' }) driftPsi!: number | null;
  @Field(() => String, { nullable: true, description: 'Why drift was not measured, when it was asked for and is null' }) driftNote!: string | null;
}

@ObjectType({ description: 'A check a version breaks: what was measured, against which threshold.', simpleResolvers: true })
export class PromotionBreach {
  @Field(() => String, { description: '`coverage` (below the floor), `calibration` (ECE above the bound) or `drift` (an input’s PSI above the bound)' })
  check!: string;
  @Field(() => String, { description: 'The version that breaks it' }) version!: string;
  @Field(() => Float, { description: 'The measured value' }) value!: number;
  @Field(() => Float, { description: 'The threshold it crossed' }) threshold!: number;
  @Field(() => String, { description: 'The same, in words' }) detail!: string;
}

@ObjectType({ description: 'The thresholds a decision was judged against (PROMOTION_* settings when it was made).', simpleResolvers: true })
export class PromotionThresholds {
  @Field(() => String, { description: 'The loss a shadow must beat the active version on' }) loss!: string;
  @Field(() => Int, { description: 'Fewest days of paired outcomes before a promotion' }) minDays!: number;
  @Field(() => Float, { description: 'Two-sided level of the interval; the test’s size is 1 − level' }) level!: number;
  @Field(() => Int, { description: 'Calendar days of the health window' }) healthWindowDays!: number;
  @Field(() => Int, { description: 'Fewest outcomes for coverage and calibration to be judged' }) minOutcomes!: number;
  @Field(() => Float, { description: 'Coverage below this breaks a version' }) coverageFloor!: number;
  @Field(() => Float, { description: 'ECE above this breaks a version' }) maxEce!: number;
  @Field(() => Float, { description: 'An input’s PSI above this breaks a version (0: drift not checked)' }) maxDriftPsi!: number;
  @Field(() => String, { description: 'DEGRADATION_ACTION: `rollback` or `alert`' }) degradationAction!: string;
}

@ObjectType({
  description:
    'One decision of the promotion policy, as recorded in the audit log: when, what, between which versions, under which policy, and the evidence. A re-evaluation that finds no new outcome is not recorded again.',
})
export class PromotionDecision {
  @Field(() => ID, { description: 'Opaque, stable id for client caches' }) id!: string;
  @Field(() => DateTimeISOResolver, { description: 'When it was decided (and, if applied, switched)' }) time!: Date;
  @Field(() => String, { description: 'The strategy' }) strategy!: string;
  @Field(() => String, { description: 'Who decided: always `policy` (the evaluator)' }) actor!: string;
  @Field(() => PromotionPolicy, { description: 'The policy in force' }) policy!: PromotionPolicy;
  @Field(() => PromotionAction, { description: 'What it concluded' }) action!: PromotionAction;
  @Field(() => PromotionReason, { description: 'Why' }) reason!: PromotionReason;
  @Field(() => String, { description: 'What was decided and why, with the figures, in one sentence' }) summary!: string;
  @Field(() => Boolean, {
    description: 'Whether the serving version changed because of it: false for HOLD, ALERT, a recommendation (MANUAL) and a switch that failed (see error)',
  })
  applied!: boolean;
  @Field(() => String, { nullable: true, description: 'Why a switch the policy decided on was not made (nothing changed); null otherwise' })
  error!: string | null;
  @Field(() => String, { description: 'The active version when it was decided' }) fromVersion!: string;
  @Field(() => String, {
    nullable: true,
    description: 'The version serving after it: the shadow for PROMOTE, the earlier version for ROLLBACK (for a recommendation: the one it would serve); null for ALERT and HOLD',
  })
  toVersion!: string | null;
  @Field(() => String, { nullable: true, description: 'The shadow version when it was decided' }) shadowVersion!: string | null;
  @Field(() => PromotionComparison, { nullable: true, description: 'Active against shadow on realized outcomes; null without a shadow' })
  comparison!: PromotionComparison | null;
  @Field(() => PromotionHealth, { description: 'The active version’s health over its window' }) activeHealth!: PromotionHealth;
  @Field(() => PromotionHealth, { nullable: true, description: 'The shadow’s health over its window (no drift: its inputs are the active version’s); null without a shadow' })
  shadowHealth!: PromotionHealth | null;
  @Field(() => String, { nullable: true, description: 'The version the latest activation replaced: what a rollback goes to; null when none' })
  rollbackTarget!: string | null;
  @Field(() => PromotionHealth, { nullable: true, description: 'That version’s health over the active version’s window, when a rollback was considered' })
  rollbackTargetHealth!: PromotionHealth | null;
  @Field(() => [PromotionBreach], { description: 'Checks the active version breaks' }) breaches!: PromotionBreach[];
  @Field(() => [PromotionBreach], { description: 'Checks the shadow breaks (judged when it was better)' }) shadowBreaches!: PromotionBreach[];
  @Field(() => PromotionThresholds, { description: 'The thresholds in force' }) thresholds!: PromotionThresholds;
}
