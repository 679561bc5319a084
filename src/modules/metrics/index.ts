import 'reflect-metadata';
export { MetricsRepository, LOG_LOSS_EPS, CALIBRATION_BINS, type MetricsFilter, type RealizedMetricsRow } from './metrics.repository.js';
export { MetricsService, type ModelMetricsQuery } from './metrics.service.js';
export { MetricsResolver } from './metrics.resolver.js';
