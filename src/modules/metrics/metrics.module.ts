import type { Config } from '../../config/index.js';
import type { Database } from '../../infra/db/index.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import type { ModelRegistry } from '../models/index.js';
import { MetricsRepository } from './metrics.repository.js';
import { MetricsService } from './metrics.service.js';
import { ComparisonService } from './comparison.service.js';

export interface MetricsModuleDeps {
  readonly config: Pick<Config, 'metricsEstimates'>;
  readonly database: Pick<Database, 'db'>;
  /** The serving market (MarketChoice.source): what modelMetrics measures unless asked for another. */
  readonly source: string;
  /** Which version serves a strategy now, and each version's training base rate. */
  readonly registry: Pick<ModelRegistry, 'active' | 'find'>;
  readonly metrics: Pick<Metrics, 'modelIntervalCoverage' | 'modelIntervalCoverageSamples'>;
}

export interface MetricsModule {
  readonly service: MetricsService;
  readonly comparison: ComparisonService;
}

/** Realized model metrics (accuracy, calibration, coverage) from history joined with outcomes, and comparisons of two versions on them. */
export function createMetricsModule({ config, database, source, registry, metrics }: MetricsModuleDeps): MetricsModule {
  const repository = new MetricsRepository(database.db);
  const service = new MetricsService({
    repository,
    activeVersion: (strategy) => registry.active(strategy)?.manifest.version,
    servingMarket: source,
    trainingBaseRate: (strategy, version) => registry.find(strategy, version)?.manifest.offlineMetrics.trainingBaseRate,
    replicates: config.metricsEstimates.replicates,
    maxRows: config.metricsEstimates.maxRows,
    onVersionCoverage: (strategy, version, coverage, samples) => {
      metrics.modelIntervalCoverage.set({ strategy, version }, coverage);
      metrics.modelIntervalCoverageSamples.set({ strategy, version }, samples);
    },
  });
  const comparison = new ComparisonService({
    repository,
    knownVersion: (strategy, version) => registry.find(strategy, version) !== undefined,
    servingMarket: source,
    replicates: config.metricsEstimates.replicates,
  });
  return { service, comparison };
}
