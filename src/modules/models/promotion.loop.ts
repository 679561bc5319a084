import type { Lease } from '../../infra/coordination/lease.js';
import type { Logger } from '../../infra/logger/logger.js';
import {
  decidePromotion,
  decisionFingerprint,
  type ComparisonEvidence,
  type HealthEvidence,
  type PromotionAction,
  type PromotionDecision,
  type PromotionEvidence,
  type PromotionLoss,
  type PromotionPolicySettings,
} from '../../domain/promotion.js';
import type { ModelLifecycle } from './models.lifecycle.js';
import type { ModelServingRepository } from './models.repository.js';
import type { ModelMetrics } from './models.type.js';
import { POLICY_ACTOR, decisionAuditEntry, type PromotionRepository, type RecordedDecision } from './promotion.repository.js';
import type { ModelRegistry } from './registry.js';

const DAY_MS = 86_400_000;

/** One loss of a comparison as `compareModels` answers it (a structural subset of its LossComparison). */
export interface LossFigures {
  readonly meanDifference: number | null;
  readonly interval: { readonly low: number; readonly high: number; readonly level: number } | null;
  readonly pValue: number | null;
  readonly days: number;
  readonly rows: number;
  readonly mde80: number | null;
  readonly daysStillNeeded: number | null;
  readonly note: string | null;
}

/**
 * Where the evidence comes from: the metrics and drift modules, handed over by main.ts (this module sits
 * below them and cannot import them). Each is what a person would ask the API for.
 */
export interface PromotionSources {
  /** compareModels(strategy, a, b) over every paired row: differences are a − b. */
  compare(query: { strategy: string; a: string; b: string }): Promise<Readonly<Record<PromotionLoss, LossFigures>>>;
  /** The asOf of a version's latest realized outcome in the serving market; undefined when none. */
  latestOutcome(strategy: string, version: string): Promise<Date | undefined>;
  /** Realized modelMetrics of a version over [from, to] of asOf (gauges left alone: quiet). */
  realized(query: { strategy: string; version: string; from: Date; to: Date; quiet: true }): Promise<Pick<ModelMetrics, 'sampleSize' | 'intervalCoverage' | 'ece'>>;
  /**
   * drift of a version's inputs over a window (every stored symbol; gauges left alone). A coded client
   * error (too many symbols stored, too little history) means "not measurable here" and is recorded as
   * such; any other failure fails the evaluation.
   */
  drift(query: { strategy: string; version: string; window: { from: Date; to: Date }; quiet: true }): Promise<{
    readonly features: ReadonlyArray<{ readonly name: string; readonly psi: number }>;
  }>;
}

export interface PromotionLoopOptions {
  readonly registry: Pick<ModelRegistry, 'strategies' | 'serving'>;
  readonly lifecycle: Pick<ModelLifecycle, 'activate'>;
  readonly serving: Pick<ModelServingRepository, 'previousActive'>;
  readonly decisions: PromotionRepository;
  readonly sources: PromotionSources;
  readonly settings: PromotionPolicySettings;
  /** How often every strategy is evaluated while the lease is held; 0 = never (and nothing runs). */
  readonly intervalMs: number;
  /** Held by one instance at a time: only the holder evaluates. */
  readonly lease: Lease;
  readonly logger: Logger;
  /** Told of every recorded decision (sibyl_model_promotions_total). */
  readonly onDecision?: (strategy: string, action: PromotionAction, applied: boolean) => void;
  /** Told of every evaluation that failed before deciding (sibyl_model_promotion_failures_total). */
  readonly onFailure?: (strategy: string) => void;
}

/** What one evaluation of one strategy came to. */
export type EvaluationResult =
  | { readonly strategy: string; readonly recorded: true; readonly decision: RecordedDecision }
  | { readonly strategy: string; readonly recorded: false; readonly why: 'unchanged' | 'not served' };

/**
 * The promotion loop: on the one instance holding its lease, every `intervalMs` and whenever the
 * outcome job stored new outcomes ({@link evaluateSoon}), each strategy's evidence is gathered, the
 * policy decides (src/domain/promotion.ts), the decision is carried out when it switches (`auto`) and
 * recorded in the audit log with its evidence, and counted.
 *
 * A switch and its decision are ONE transaction (the activation writes the decision's audit row), so
 * there is never a switch without its recorded reason nor a recorded switch that did not happen. If
 * anything fails before that transaction commits (a source, verification of the version, the
 * database), nothing has switched; a failed switch is recorded as such (`applied: false`, `error`).
 *
 * Evaluations never overlap: a trigger while one runs makes one more run after it.
 */
export class PromotionLoop {
  readonly #options: PromotionLoopOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<EvaluationResult[]> | undefined;
  #again = false;
  #stopped = false;
  /** Evaluations run one at a time, whoever asks (the timer, an outcome pass, a test or an operator tool). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: PromotionLoopOptions) {
    this.#options = options;
  }

  /** Contends for the lease and, while held, evaluates every `intervalMs` (and once when acquired). */
  start(): void {
    const { intervalMs, lease, logger } = this.#options;
    if (intervalMs <= 0) return;
    lease.start((held) => {
      if (held) {
        logger.info('promotion evaluator: this instance evaluates');
        this.evaluateSoon();
      }
    });
    this.#timer = setInterval(() => this.evaluateSoon(), intervalMs);
    this.#timer.unref();
  }

  /** Runs an evaluation of every strategy soon, if this instance holds the lease (new outcomes were stored). */
  evaluateSoon(): void {
    if (this.#stopped || this.#options.intervalMs <= 0 || !this.#options.lease.held) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    void this.evaluateAll().catch((error: unknown) => this.#options.logger.error({ err: error }, 'promotion evaluator failed'));
  }

  /** Evaluates every strategy once, one after another; a strategy that fails is logged and counted, the others go on. */
  evaluateAll(): Promise<EvaluationResult[]> {
    const run = (async () => {
      await this.#running?.catch(() => undefined);
      const results: EvaluationResult[] = [];
      for (const strategy of this.#options.registry.strategies()) {
        if (this.#stopped) break;
        try {
          results.push(await this.evaluate(strategy));
        } catch (error) {
          this.#options.onFailure?.(strategy);
          this.#options.logger.warn({ err: error, strategy }, `promotion evaluator: ${strategy} not evaluated; nothing changed`);
        }
      }
      return results;
    })();
    this.#running = run;
    void run
      .catch(() => undefined)
      .finally(() => {
        if (this.#running === run) this.#running = undefined;
        if (this.#again && !this.#stopped) {
          this.#again = false;
          this.evaluateSoon();
        }
      });
    return run;
  }

  /**
   * Gathers the evidence for one strategy, decides, carries it out and records it, after any evaluation
   * under way. Throws when the evidence cannot be gathered (nothing decided, nothing changed).
   */
  evaluate(strategy: string): Promise<EvaluationResult> {
    const run = this.#queue.then(
      () => this.#evaluate(strategy),
      () => this.#evaluate(strategy),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #evaluate(strategy: string): Promise<EvaluationResult> {
    const { registry, settings, decisions, logger } = this.#options;
    const started = performance.now();
    const elapsedMs = () => Math.round(performance.now() - started);
    const serving = registry.serving(strategy);
    if (!serving) return { strategy, recorded: false, why: 'not served' };
    const active = serving.active.manifest.version;
    const shadow = serving.shadow?.manifest.version ?? null;

    const evidence = await this.#evidence(strategy, active, shadow);
    let decision = decidePromotion(evidence, settings);
    if (decision.action === 'ROLLBACK' && evidence.rollback.target) {
      // Only now is the target's health worth measuring: over the active version's window, the checks it broke.
      const checks = new Set(decision.breaches.map((b) => b.check));
      const targetHealth = await this.#health(strategy, evidence.rollback.target, {
        withDrift: checks.has('drift'),
        window: evidence.activeHealth.to ? { to: evidence.activeHealth.to } : undefined,
      });
      evidence.rollback = { ...evidence.rollback, health: targetHealth };
      decision = decidePromotion(evidence, settings);
    }

    const fingerprint = decisionFingerprint(evidence, decision);
    const latest = await decisions.latest(strategy);
    // A failed switch is tried again on every evaluation; anything else already said is not repeated.
    if (latest && latest.fingerprint === fingerprint && latest.error === null) return { strategy, recorded: false, why: 'unchanged' };

    const recorded = this.#recorded(evidence, decision, fingerprint);
    if (decision.switches && decision.toVersion) {
      const applied = { ...recorded, applied: true };
      try {
        await this.#options.lifecycle.activate(strategy, decision.toVersion, POLICY_ACTOR, {
          why: decisionAuditEntry(strategy, applied),
          expectActive: active,
        });
      } catch (error) {
        const failed = { ...recorded, applied: false, error: (error as Error).message };
        logger.error({ err: error, strategy, action: decision.action, to: decision.toVersion }, `promotion policy: ${decision.action} of ${strategy} to ${decision.toVersion} failed; nothing changed`);
        await decisions.record(strategy, failed);
        this.#options.onDecision?.(strategy, decision.action, false);
        return { strategy, recorded: true, decision: failed };
      }
      logger.warn({ strategy, action: decision.action, from: active, to: decision.toVersion, elapsedMs: elapsedMs() }, `promotion policy: ${decision.summary}`);
      this.#options.onDecision?.(strategy, decision.action, true);
      return { strategy, recorded: true, decision: applied };
    }
    await decisions.record(strategy, recorded);
    const log = decision.action === 'HOLD' ? logger.info.bind(logger) : logger.warn.bind(logger);
    log(
      { strategy, action: decision.action, reason: decision.reason, policy: settings.policy, elapsedMs: elapsedMs() },
      `promotion policy (${settings.policy}): ${decision.summary}`,
    );
    this.#options.onDecision?.(strategy, decision.action, false);
    return { strategy, recorded: true, decision: recorded };
  }

  /** Stops evaluating and releases the lease; an evaluation under way finishes first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
    await this.#options.lease.stop();
  }

  async #evidence(strategy: string, active: string, shadow: string | null): Promise<{ -readonly [K in keyof PromotionEvidence]: PromotionEvidence[K] }> {
    const { settings, sources, serving, decisions } = this.#options;
    const comparison = shadow ? comparisonOf(settings.loss, (await sources.compare({ strategy, a: active, b: shadow }))[settings.loss]) : null;
    const activeHealth = await this.#health(strategy, active, { withDrift: settings.maxDriftPsi > 0 });
    const shadowHealth = shadow ? await this.#health(strategy, shadow, { withDrift: false }) : null;
    const target = (await serving.previousActive(strategy, active)) ?? null;
    const deposedByPolicy = target ? await decisions.deposedByPolicy(strategy, target) : false;
    return { strategy, active, shadow, comparison, activeHealth, shadowHealth, rollback: { target, deposedByPolicy, health: null } };
  }

  /**
   * A version's health over the window of `healthWindowDays` calendar days ending at `window.to`
   * (default: its own latest realized outcome).
   */
  async #health(strategy: string, version: string, options: { withDrift: boolean; window?: { to: Date } | undefined }): Promise<HealthEvidence> {
    const { sources, settings } = this.#options;
    const to = options.window?.to ?? (await sources.latestOutcome(strategy, version));
    if (!to) {
      return { version, from: null, to: null, outcomes: 0, coverage: null, ece: null, drift: null, driftNote: options.withDrift ? 'no realized outcome yet to end a window' : null };
    }
    const from = new Date(to.getTime() - (settings.healthWindowDays - 1) * DAY_MS);
    const realized = await sources.realized({ strategy, version, from, to, quiet: true });
    let drift: HealthEvidence['drift'] = null;
    let driftNote: string | null = null;
    if (options.withDrift) {
      try {
        const answer = await sources.drift({ strategy, version, window: { from, to }, quiet: true });
        for (const f of answer.features) if (!drift || f.psi > drift.psi) drift = { feature: f.name, psi: f.psi };
        if (!drift) driftNote = 'the drift answer has no inputs';
      } catch (error) {
        // A coded client error says "cannot be measured here" (too many symbols, too little history); anything else is a fault.
        if (!codeOf(error)) throw error;
        driftNote = `not measured: ${(error as Error).message}`;
      }
    }
    return { version, from, to, outcomes: realized.sampleSize, coverage: realized.intervalCoverage, ece: realized.ece, drift, driftNote };
  }

  #recorded(evidence: PromotionEvidence, decision: PromotionDecision, fingerprint: string): RecordedDecision {
    const { settings } = this.#options;
    const { policy, degradationAction, ...thresholds } = settings;
    return {
      policy,
      degradationAction,
      action: decision.action,
      reason: decision.reason,
      summary: decision.summary,
      applied: false,
      error: null,
      fromVersion: evidence.active,
      toVersion: decision.toVersion,
      shadowVersion: evidence.shadow,
      comparison: evidence.comparison,
      activeHealth: evidence.activeHealth,
      shadowHealth: evidence.shadowHealth,
      rollbackTarget: evidence.rollback.target,
      rollbackTargetHealth: evidence.rollback.health,
      breaches: decision.breaches,
      shadowBreaches: decision.shadowBreaches,
      thresholds,
      fingerprint,
    };
  }
}

function comparisonOf(loss: PromotionLoss, figures: LossFigures): ComparisonEvidence {
  return {
    loss,
    meanDifference: figures.meanDifference,
    interval: figures.interval && { low: figures.interval.low, high: figures.interval.high, level: figures.interval.level },
    pValue: figures.pValue,
    days: figures.days,
    rows: figures.rows,
    mde80: figures.mde80,
    daysStillNeeded: figures.daysStillNeeded,
    note: figures.note,
  };
}

/** The `extensions.code` of a coded error other than an internal one, or undefined. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { extensions?: { code?: unknown } } | undefined)?.extensions?.code;
  return typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR' && code !== 'UNAVAILABLE' ? code : undefined;
}
