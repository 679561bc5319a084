import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type {
  Breach,
  ComparisonEvidence,
  DegradationAction,
  HealthEvidence,
  PromotionAction,
  PromotionPolicy,
  PromotionReason,
  PromotionThresholds,
} from '../../domain/promotion.js';

/** The actor of every decision the promotion evaluator records, and of the switches it makes. */
export const POLICY_ACTOR = 'policy';

/** `audit_log.action` of a recorded decision, one per action; `subject` is the strategy. */
export const PromotionAuditAction = {
  PROMOTE: 'promotion.promote',
  ROLLBACK: 'promotion.rollback',
  ALERT: 'promotion.alert',
  HOLD: 'promotion.hold',
} as const satisfies Record<PromotionAction, string>;

const DECISION_ACTIONS: readonly string[] = Object.values(PromotionAuditAction);

/**
 * One decision as the audit log keeps it (`detail`): everything a person reviewing it needs, written
 * once, in the transaction that carried it out when it switched a version.
 */
export interface RecordedDecision {
  readonly policy: PromotionPolicy;
  readonly degradationAction: DegradationAction;
  readonly action: PromotionAction;
  readonly reason: PromotionReason;
  readonly summary: string;
  /** Whether the serving version changed because of it. */
  readonly applied: boolean;
  /** Why a switch the policy decided on was not made (it failed; nothing changed); null otherwise. */
  readonly error: string | null;
  /** The active version when it was evaluated. */
  readonly fromVersion: string;
  /** The version serving after it (or that would, for a recommendation); null for ALERT and HOLD. */
  readonly toVersion: string | null;
  readonly shadowVersion: string | null;
  readonly comparison: ComparisonEvidence | null;
  readonly activeHealth: HealthEvidence;
  readonly shadowHealth: HealthEvidence | null;
  readonly rollbackTarget: string | null;
  readonly rollbackTargetHealth: HealthEvidence | null;
  readonly breaches: readonly Breach[];
  readonly shadowBreaches: readonly Breach[];
  readonly thresholds: PromotionThresholds;
  /** Same fingerprint as the latest recorded decision: nothing new, not recorded again (domain/promotion.ts). */
  readonly fingerprint: string;
}

/** A recorded decision with where and when it was recorded. */
export interface StoredDecision extends RecordedDecision {
  readonly id: number;
  readonly time: Date;
  readonly strategy: string;
  readonly actor: string;
}

/** The audit row of a decision, for writing in another repository's transaction (an activation). */
export function decisionAuditEntry(strategy: string, decision: RecordedDecision): { actor: string; action: string; subject: string; detail: string } {
  return { actor: POLICY_ACTOR, action: PromotionAuditAction[decision.action], subject: strategy, detail: JSON.stringify(decision) };
}

/**
 * All SQL over the promotion evaluator's entries of `audit_log` (served by the (subject, action, id)
 * index of migration 0007).
 *
 * ```ts
 * const decisions = new PromotionRepository(database.db);
 * await decisions.record('direction-1d', decision);               // a HOLD, an ALERT, a recommendation
 * (await decisions.recent(['direction-1d'], 20)).get('direction-1d'); // newest first
 * ```
 */
export class PromotionRepository {
  constructor(private readonly db: Db) {}

  /** Records a decision that switched nothing (a switch records its decision in the activation's transaction). */
  async record(strategy: string, decision: RecordedDecision): Promise<void> {
    await this.db.insertInto('audit_log').values(decisionAuditEntry(strategy, decision)).execute();
  }

  /** The `last` latest decisions of each strategy, newest first, in ONE statement. */
  async recent(strategies: readonly string[], last: number): Promise<Map<string, StoredDecision[]>> {
    const out = new Map<string, StoredDecision[]>(strategies.map((s) => [s, []]));
    if (strategies.length === 0) return out;
    const { rows } = await sql<{ id: string | number; time: Date; actor: string; subject: string; detail: RecordedDecision }>`
      select d.id, d.time, d.actor, d.subject, d.detail
      from unnest(${[...new Set(strategies)]}::text[]) as s(strategy)
      cross join lateral (
        select id, time, actor, subject, detail from audit_log
        where subject = s.strategy and action = any(${DECISION_ACTIONS}::text[])
        order by id desc
        limit ${last}
      ) d
      order by d.subject, d.id desc
    `.execute(this.db);
    for (const row of rows) out.get(row.subject)?.push(toStored(row));
    return out;
  }

  async latest(strategy: string): Promise<StoredDecision | undefined> {
    return (await this.recent([strategy], 1)).get(strategy)?.[0];
  }

  /** Whether the policy ever rolled back away from `version` (switched, not only recommended). */
  async deposedByPolicy(strategy: string, version: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('audit_log')
      .select('id')
      .where('subject', '=', strategy)
      .where('action', '=', PromotionAuditAction.ROLLBACK)
      .where(sql<boolean>`detail->>'fromVersion' = ${version} and (detail->>'applied')::boolean`)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}

function toStored(row: { id: string | number; time: Date; actor: string; subject: string; detail: RecordedDecision }): StoredDecision {
  const detail = row.detail;
  const dates = (h: HealthEvidence | null): HealthEvidence | null =>
    h && { ...h, from: h.from === null ? null : new Date(h.from), to: h.to === null ? null : new Date(h.to) };
  return {
    ...detail,
    activeHealth: dates(detail.activeHealth)!,
    shadowHealth: dates(detail.shadowHealth),
    rollbackTargetHealth: dates(detail.rollbackTargetHealth),
    id: Number(row.id),
    time: row.time,
    strategy: row.subject,
    actor: row.actor,
  };
}
