import 'reflect-metadata';
export { DriftService, DEFAULT_DRIFT_LIMITS, type DriftDependencies, type DriftLimits, type DriftQuery } from './drift.service.js';
export { DriftResolver } from './drift.resolver.js';
export { Drift, DriftStatus, VariableDrift, PeriodDrift } from './drift.type.js';
export { createDriftModule, type DriftModule, type DriftModuleDeps } from './drift.module.js';
