import 'reflect-metadata';
export { ModelRegistry, type ModelVersionEntry, type RefusedModel } from './registry.js';
export { ModelsService } from './models.service.js';
export { ModelsResolver } from './models.resolver.js';
export { ModelVersion, ModelMetrics, Strategy } from './models.type.js';
export { manifestSchema, type Manifest } from './manifest.js';
