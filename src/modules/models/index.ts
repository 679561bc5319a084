import 'reflect-metadata';
export { ModelRegistry, ModelRefusedError, type ModelVersionEntry, type RefusedModel, type Serving } from './registry.js';
export { ModelLifecycle, SERVING_CHANGED_TOPIC, type ServingChangedEvent } from './models.lifecycle.js';
export { ModelServingRepository, AuditAction, type ServingRecord, type ServingChange } from './models.repository.js';
export { ModelsService, type ModelsLoaders } from './models.service.js';
export { PromotionLoop, type PromotionSources, type LossFigures, type EvaluationResult } from './promotion.loop.js';
export {
  PromotionRepository,
  PromotionAuditAction,
  POLICY_ACTOR,
  type RecordedDecision,
  type StoredDecision,
} from './promotion.repository.js';
export { PromotionDecision } from './promotion.type.js';
export { ModelsResolver } from './models.resolver.js';
export { ModelVersion, ModelMetrics, MetricEstimate, PeriodCoverage, MetricsVerdict, EstimationMethod, Strategy } from './models.type.js';
export { createModelsModule, modelsHealth, type ModelsModule, type ModelsModuleDeps } from './models.module.js';
