import 'reflect-metadata';
export { ModelRegistry, ModelRefusedError, type ModelVersionEntry, type RefusedModel, type Serving } from './registry.js';
export { ModelLifecycle, SERVING_CHANGED_TOPIC, type ServingChangedEvent } from './models.lifecycle.js';
export { ModelServingRepository, AuditAction, type ServingRecord, type ServingChange } from './models.repository.js';
export { ModelsService } from './models.service.js';
export { ModelsResolver } from './models.resolver.js';
export { ModelVersion, ModelMetrics, MetricEstimate, PeriodCoverage, MetricsVerdict, EstimationMethod, Strategy } from './models.type.js';
export { createModelsModule, modelsHealth, type ModelsModule, type ModelsModuleDeps } from './models.module.js';
