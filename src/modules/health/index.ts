import 'reflect-metadata';
export { HealthResolver } from './health.resolver.js';
export { HealthService, type HealthReport } from './health.service.js';
export { createHealthModule, type HealthModule, type HealthModuleDeps } from './health.module.js';
