import 'reflect-metadata';
export {
  MetricsRepository,
  LOG_LOSS_EPS,
  CALIBRATION_BINS,
  type MetricsFilter,
  type RealizedMetricsRow,
  type ScoredRow,
  type PairFilter,
  type PairedDayRow,
} from './metrics.repository.js';
export { MetricsService, MIN_ESTIMATE_BLOCKS, type ModelMetricsQuery, type MetricsServiceOptions } from './metrics.service.js';
export { ComparisonService, type CompareModelsQuery, type ComparisonServiceDeps } from './comparison.service.js';
export { ModelComparison, LossComparison, DifferenceInterval, ComparisonMethod, ComparisonVerdict } from './comparison.type.js';
export { MetricsResolver } from './metrics.resolver.js';
export { createMetricsModule, type MetricsModule, type MetricsModuleDeps } from './metrics.module.js';
