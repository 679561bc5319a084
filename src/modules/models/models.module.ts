import type { Config } from '../../config/index.js';
import type { Lease } from '../../infra/coordination/lease.js';
import type { Database } from '../../infra/db/index.js';
import { createOnnxEngine } from '../../infra/inference/onnx.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import type { EventBus } from '../../infra/pubsub/pubsub.js';
import { recordSpan } from '../../infra/tracing/tracing.js';
import type { HealthCheck } from '../../shared/health.js';
import type { CloseStep } from '../../shared/lifecycle.js';
import { ModelLifecycle } from './models.lifecycle.js';
import { ModelServingRepository } from './models.repository.js';
import { ModelsService } from './models.service.js';
import { PromotionLoop, type PromotionSources } from './promotion.loop.js';
import { PromotionRepository } from './promotion.repository.js';
import { ModelRegistry } from './registry.js';

export interface ModelsModuleDeps {
  readonly config: Pick<Config, 'modelsDir' | 'inference' | 'modelsRescanIntervalMs' | 'promotion'>;
  readonly database: Pick<Database, 'db'>;
  /** Carries activations between instances. */
  readonly events: EventBus;
  /** Calls its listener when the event bus reconnects: a change published meanwhile was lost. */
  readonly onEventsReconnected: (listener: () => void) => void;
  readonly metrics: Pick<
    Metrics,
    'inferenceRunsTotal' | 'inferenceBatchSize' | 'inferenceSeconds' | 'modelLoading' | 'modelPromotionsTotal' | 'modelPromotionFailuresTotal'
  >;
  readonly logger: Logger;
}

export interface ModelsModule {
  readonly registry: ModelRegistry;
  readonly lifecycle: ModelLifecycle;
  readonly service: ModelsService;
  /** The version recorded as active for a strategy at a past time, if any (point-in-time predictions). */
  readonly recordedActiveAt: (strategy: string, time: Date) => Promise<string | undefined>;
  readonly health: HealthCheck;
  readonly closeSteps: readonly CloseStep[];
  /**
   * Starts the promotion loop (README, Model lifecycle: the promotion loop) once the modules it reads
   * evidence from exist; `lease` lets one instance at a time evaluate. Its close step stops it.
   */
  startPromotionLoop(sources: PromotionSources, lease: Lease): { readonly loop: PromotionLoop; readonly closeSteps: readonly CloseStep[] };
}

/** The model versions on disk, which of them serves each strategy (from the database), and their readiness. */
export async function createModelsModule({
  config,
  database,
  events,
  onEventsReconnected,
  metrics,
  logger: parent,
}: ModelsModuleDeps): Promise<ModelsModule> {
  const logger = parent.child({ component: 'models' });
  const registry = await ModelRegistry.load({
    directory: config.modelsDir,
    engine: createOnnxEngine(),
    batching: config.inference,
    logger,
    onRun: (manifest, rows, seconds) => {
      metrics.inferenceRunsTotal.inc({ strategy: manifest.strategy, version: manifest.version });
      metrics.inferenceBatchSize.observe(rows);
      metrics.inferenceSeconds.observe(seconds);
      recordSpan('inference.run', seconds, { 'sibyl.strategy': manifest.strategy, 'sibyl.version': manifest.version, 'sibyl.rows': rows });
    },
  });
  // The active version of each strategy comes from the database, so every instance serves the same one.
  const servingRecords = new ModelServingRepository(database.db);
  const lifecycle = new ModelLifecycle({
    registry,
    repository: servingRecords,
    events,
    logger,
    rescanIntervalMs: config.modelsRescanIntervalMs,
  });
  try {
    await lifecycle.start();
  } catch (error) {
    await registry.close();
    throw error;
  }
  metrics.modelLoading.source = () => ({ refused: registry.refused.length, unservable: lifecycle.problems().size });
  onEventsReconnected(
    () =>
      void lifecycle
        .sync('redis reconnected')
        .catch((error: unknown) => parent.warn({ err: error }, 'model sync after reconnect failed')),
  );
  const decisions = new PromotionRepository(database.db);
  return {
    registry,
    lifecycle,
    service: new ModelsService({ registry, lifecycle, decisions }),
    recordedActiveAt: (strategy, time) => servingRecords.activeAt(strategy, time),
    health: modelsHealth(registry, lifecycle),
    closeSteps: [
      { name: 'models', close: () => registry.close() },
      { name: 'model lifecycle', close: () => lifecycle.close() },
    ],
    startPromotionLoop(sources, lease) {
      const { policy, degradationAction, intervalMs, ...thresholds } = config.promotion;
      const loop = new PromotionLoop({
        registry,
        lifecycle,
        serving: servingRecords,
        decisions,
        sources,
        settings: { policy, degradationAction, level: PROMOTION_LEVEL, ...thresholds },
        intervalMs,
        lease,
        logger: parent.child({ component: 'promotion' }),
        onDecision: (strategy, action, applied) => metrics.modelPromotionsTotal.inc({ strategy, action: action.toLowerCase(), applied: String(applied) }),
        onFailure: (strategy) => metrics.modelPromotionFailuresTotal.inc({ strategy }),
      });
      if (intervalMs > 0) {
        // Every series from 0, so an alert on increase() sees the first decision of each kind.
        for (const strategy of registry.strategies()) {
          metrics.modelPromotionFailuresTotal.inc({ strategy }, 0);
          for (const [action, applied] of PROMOTION_SERIES) metrics.modelPromotionsTotal.inc({ strategy, action, applied }, 0);
        }
      }
      loop.start();
      return { loop, closeSteps: [{ name: 'promotion loop', close: () => loop.stop() }] };
    },
  };
}

/** The (action, applied) pairs a decision can be counted under: only a PROMOTE or ROLLBACK switches. */
const PROMOTION_SERIES = [
  ['promote', 'true'],
  ['promote', 'false'],
  ['rollback', 'true'],
  ['rollback', 'false'],
  ['alert', 'false'],
  ['hold', 'false'],
] as const;

/** The two-sided level of the comparison's interval the policy reads (compareModels' default). */
const PROMOTION_LEVEL = 0.95;

/**
 * Ready when every known strategy has a version to serve; refused versions, or an instance that cannot
 * serve the recorded active version, make it degraded (still ready: it serves what it can).
 */
export function modelsHealth(registry: ModelRegistry, lifecycle: Pick<ModelLifecycle, 'problems'>): HealthCheck {
  return {
    name: 'models',
    async check() {
      const loaded = registry.strategies().map((s) => {
        const serving = registry.serving(s)!;
        return `${s}@${serving.active.manifest.version}${serving.shadow ? ` (shadow ${serving.shadow.manifest.version})` : ''}`;
      });
      const refused = registry.refused.map((r) => `${r.directory}: ${r.reason}`);
      const problems = [...lifecycle.problems()].map(([strategy, problem]) => `${strategy}: ${problem}`);
      if (loaded.length === 0)
        return { status: 'down', detail: refused.length ? `none loaded; refused ${refused.join('; ')}` : 'no models found' };
      const detail = `serving ${loaded.join(', ')}${refused.length ? `; refused ${refused.length}: ${refused.join('; ')}` : ''}${problems.length ? `; ${problems.join('; ')}` : ''}`;
      return { status: refused.length || problems.length ? 'degraded' : 'ok', detail };
    },
  };
}
