import DataLoader from 'dataloader';
import { modelVersionId, strategyId } from '../../domain/entity-ids.js';
import { findStrategy } from '../../domain/strategies.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import type { ModelLifecycle } from './models.lifecycle.js';
import type { EstimationMethod, MetricsVerdict, ModelMetrics, ModelVersion, Strategy } from './models.type.js';
import type { ModelRegistry, ModelVersionEntry } from './registry.js';
import type { PromotionRepository } from './promotion.repository.js';
import type { PromotionDecision } from './promotion.type.js';
import { promotionView } from './promotion.view.js';

export interface ModelsServiceDeps {
  readonly registry: ModelRegistry;
  /** Absent where nothing may change (a schema built for tests of reads only). */
  readonly lifecycle?: ModelLifecycle | undefined;
  /** The promotion policy's recorded decisions; absent: `Strategy.promotions` answers UNAVAILABLE. */
  readonly decisions?: PromotionRepository | undefined;
}

/** Per-request loaders: every `Strategy.promotions` of one operation is ONE statement. */
export interface ModelsLoaders {
  readonly promotions: DataLoader<{ strategy: string; last: number }, PromotionDecision[], string>;
}

/**
 * Turns registry entries into the GraphQL view of strategies and versions, and carries out lifecycle
 * changes (activation, rollback, shadow) for the resolver. `actor` is who asked: it goes to the audit log.
 */
export class ModelsService {
  /** A version's offline metrics never change (they come from its manifest): built once, not per prediction. */
  readonly #offline = new WeakMap<ModelVersionEntry, ModelMetrics>();
  /**
   * The last view made of each version: `Prediction.model` asks for one per item of every answer, and
   * all but whether it is active or in shadow is fixed by its manifest (id, dates, metrics). Made again
   * only when those two change.
   */
  readonly #views = new WeakMap<ModelVersionEntry, ModelVersion>();

  private readonly registry: ModelRegistry;
  private readonly lifecycle: ModelLifecycle | undefined;
  private readonly decisions: PromotionRepository | undefined;

  constructor({ registry, lifecycle, decisions }: ModelsServiceDeps) {
    this.registry = registry;
    this.lifecycle = lifecycle;
    this.decisions = decisions;
  }

  createLoaders(): ModelsLoaders {
    return {
      promotions: new DataLoader(
        async (keys) => {
          const decisions = this.decisions;
          if (!decisions) throw codedError(ErrorCode.UNAVAILABLE, 'promotion decisions are not available on this instance');
          // One statement for the largest `last` asked; each key keeps its own count.
          const last = Math.max(...keys.map((k) => k.last));
          const byStrategy = await decisions.recent(
            keys.map((k) => k.strategy),
            last,
          );
          return keys.map((k) => (byStrategy.get(k.strategy) ?? []).slice(0, k.last).map(promotionView));
        },
        { cacheKeyFn: (k) => `${k.strategy}\u0000${k.last}` },
      ),
    };
  }

  strategies(): Strategy[] {
    return this.registry.strategies().flatMap((name) => {
      const strategy = this.strategy(name);
      return strategy ? [strategy] : [];
    });
  }

  strategy(name: string): Strategy | undefined {
    const definition = findStrategy(name);
    const serving = this.registry.serving(name);
    if (!definition || !serving) return undefined;
    return {
      id: strategyId(name),
      name,
      horizon: definition.horizon,
      description: definition.description,
      activeVersion: this.view(serving.active),
      shadowVersion: serving.shadow ? this.view(serving.shadow) : null,
      versions: this.registry.versionsOf(name).map((entry) => this.view(entry)),
    };
  }

  async activate(strategy: string, version: string, actor: string): Promise<Strategy> {
    await this.#lifecycle().activate(strategy, version, actor);
    return this.strategy(strategy)!;
  }

  async rollback(strategy: string, actor: string): Promise<Strategy> {
    await this.#lifecycle().rollback(strategy, actor);
    return this.strategy(strategy)!;
  }

  async setShadow(strategy: string, version: string | null, actor: string): Promise<Strategy> {
    await this.#lifecycle().setShadow(strategy, version, actor);
    return this.strategy(strategy)!;
  }

  #lifecycle(): ModelLifecycle {
    if (!this.lifecycle) throw codedError(ErrorCode.UNAVAILABLE, 'model changes are not possible on this instance');
    return this.lifecycle;
  }

  view(entry: ModelVersionEntry): ModelVersion {
    const { manifest } = entry;
    const serving = this.registry.serving(manifest.strategy);
    const active = serving?.active === entry;
    const shadow = serving?.shadow === entry;
    const known = this.#views.get(entry);
    if (known && known.active === active && known.shadow === shadow) return known;
    const view: ModelVersion = {
      id: known?.id ?? modelVersionId(manifest.strategy, manifest.version),
      strategy: manifest.strategy,
      version: manifest.version,
      createdAt: known?.createdAt ?? new Date(manifest.createdAt),
      active,
      shadow,
      features: manifest.features,
      offlineMetrics: this.#offlineMetrics(entry),
    };
    this.#views.set(entry, view);
    return view;
  }

  #offlineMetrics(entry: ModelVersionEntry): ModelMetrics {
    let metrics = this.#offline.get(entry);
    if (!metrics) this.#offline.set(entry, (metrics = offlineMetrics(entry)));
    return metrics;
  }
}

function offlineMetrics({ manifest }: ModelVersionEntry): ModelMetrics {
  const m = manifest.offlineMetrics;
  const hindsight = m.baseRate * (1 - m.baseRate);
  const { verdict = null, ...estimation } = m.estimation ?? {};
  return {
    source: 'offline',
    sampleSize: m.sampleSize,
    accuracy: m.accuracy,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    brier: m.brier,
    baselineBrier: m.baselineBrier,
    baseRate: m.baseRate,
    trainingBaseRate: m.trainingBaseRate ?? null,
    baselineAccuracy: m.baselineAccuracy,
    // Offline, the baseline always was the training (validation-period) base rate: see src/training/train.ts.
    trainingBaseRateBrier: m.baselineBrier,
    hindsightBaseRateBrier: hindsight,
    brierSkillVsTrainingBaseRate: m.baselineBrier > 0 ? 1 - m.brier / m.baselineBrier : null,
    brierSkillVsHindsightBaseRate: hindsight > 0 ? 1 - m.brier / hindsight : null,
    logLoss: m.logLoss,
    ece: m.ece,
    intervalCoverage: m.intervalCoverage['0.95'] ?? null,
    coverageByYear: m.intervalCoverageByYear ?? [],
    coverageByMonth: m.intervalCoverageByMonth ?? [],
    calibration: m.calibration.map(({ lower, upper, count, meanPredicted, observedRate }) => ({ lower, upper, count, meanPredicted, observedRate })),
    from: new Date(`${m.period.from}T00:00:00Z`),
    to: new Date(`${m.period.to}T00:00:00Z`),
    estimates: m.estimates ?? [],
    estimation: m.estimation ? (estimation as EstimationMethod) : null,
    estimatesNote: m.estimates ? null : `the manifest of ${manifest.strategy}@${manifest.version} has no estimates (written before training computed them); retrain with npm run train to get them`,
    verdict: verdict as MetricsVerdict | null,
  };
}
