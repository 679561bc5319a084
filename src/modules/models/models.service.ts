import { findStrategy } from '../predictions/strategies.js';
import type { ModelMetrics, ModelVersion, Strategy } from './models.type.js';
import type { ModelRegistry, ModelVersionEntry } from './registry.js';

/** Turns registry entries into the GraphQL view of strategies and versions. */
export class ModelsService {
  /** A version's offline metrics never change (they come from its manifest): built once, not per prediction. */
  readonly #offline = new WeakMap<ModelVersionEntry, ModelMetrics>();

  constructor(private readonly registry: ModelRegistry) {}

  strategies(): Strategy[] {
    return this.registry.strategies().flatMap((name) => {
      const definition = findStrategy(name);
      const active = this.registry.active(name);
      if (!definition || !active) return [];
      return [
        {
          name,
          horizon: definition.horizon,
          description: definition.description,
          activeVersion: this.view(active),
          versions: this.registry.versionsOf(name).map((entry) => this.view(entry)),
        },
      ];
    });
  }

  view(entry: ModelVersionEntry): ModelVersion {
    const { manifest } = entry;
    return {
      strategy: manifest.strategy,
      version: manifest.version,
      createdAt: new Date(manifest.createdAt),
      active: this.registry.active(manifest.strategy) === entry,
      features: manifest.features,
      offlineMetrics: this.#offlineMetrics(entry),
    };
  }

  #offlineMetrics(entry: ModelVersionEntry): ModelMetrics {
    let metrics = this.#offline.get(entry);
    if (!metrics) this.#offline.set(entry, (metrics = offlineMetrics(entry)));
    return metrics;
  }
}

function offlineMetrics({ manifest }: ModelVersionEntry): ModelMetrics {
  const m = manifest.offlineMetrics;
  return {
    source: 'offline',
    sampleSize: m.sampleSize,
    accuracy: m.accuracy,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    brier: m.brier,
    baselineBrier: m.baselineBrier,
    logLoss: m.logLoss,
    ece: m.ece,
    intervalCoverage: m.intervalCoverage['0.95'] ?? null,
    calibration: m.calibration,
    from: new Date(`${m.period.from}T00:00:00Z`),
    to: new Date(`${m.period.to}T00:00:00Z`),
  };
}
