import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import type { MetricsService } from '../metrics/index.js';
import type { ModelRegistry } from '../models/index.js';
import { DriftService } from './drift.service.js';

export interface DriftModuleDeps {
  /** Versions by name and the active one. */
  readonly registry: Pick<ModelRegistry, 'active' | 'find'>;
  /** Stored bars (or the synthetic market): the chosen provider itself, not the prediction cache in front of it. */
  readonly market: Pick<MarketDataProvider, 'fetchBars' | 'listSymbols'>;
  /** Realized calibration and coverage of the window. */
  readonly modelMetrics: Pick<MetricsService, 'modelMetrics'>;
  readonly metrics: Pick<Metrics, 'driftPsi' | 'driftKs' | 'driftWindowEndSeconds'>;
}

export interface DriftModule {
  readonly service: DriftService;
}

/** `drift`, with the sibyl_drift_* gauges set to each answer (docs/decisions/drift.md says why not on a timer). */
export function createDriftModule({ registry, market, modelMetrics, metrics }: DriftModuleDeps): DriftModule {
  const service = new DriftService({
    models: registry,
    market,
    realized: (query) => modelMetrics.modelMetrics(query),
    onComputed: (answer) => {
      const labels = { strategy: answer.strategy, version: answer.version };
      for (const variable of [...answer.features, ...(answer.probability ? [answer.probability] : [])]) {
        metrics.driftPsi.set({ ...labels, feature: variable.name }, variable.psi);
        metrics.driftKs.set({ ...labels, feature: variable.name }, variable.ks);
      }
      metrics.driftWindowEndSeconds.set(labels, answer.to.getTime() / 1000);
    },
  });
  return { service };
}
