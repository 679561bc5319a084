import 'reflect-metadata';
export {
  MetricsRepository,
  LOG_LOSS_EPS,
  CALIBRATION_BINS,
  type MetricsFilter,
  type RealizedMetricsRow,
  type ScoredRow,
} from './metrics.repository.js';
export { MetricsService, MIN_ESTIMATE_BLOCKS, type ModelMetricsQuery, type MetricsServiceOptions } from './metrics.service.js';
export { MetricsResolver } from './metrics.resolver.js';
export { createMetricsModule, type MetricsModule, type MetricsModuleDeps } from './metrics.module.js';
