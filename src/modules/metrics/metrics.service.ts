import { codedError, ErrorCode, badUserInput } from '../../shared/errors.js';
import type { ModelMetrics } from '../models/index.js';
import { DEFAULT_STRATEGY, findStrategy } from '../../domain/strategies.js';
import { CALIBRATION_BINS, type MetricsRepository } from './metrics.repository.js';

export interface ModelMetricsQuery {
  readonly strategy: string;
  readonly version?: string | undefined;
  readonly symbol?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
}

/**
 * Live model metrics (`source: "realized"`): how the predictions Sibyl actually served turned out, from
 * the outcomes the outcome job stored. Without a `version` it measures the strategy's active version
 * (mixing versions would describe no model); with no active version loaded, every version recorded.
 * No resolved rows is an answer (sampleSize 0, null metrics), not an error.
 */
export class MetricsService {
  constructor(
    private readonly repository: MetricsRepository,
    /** The version serving a strategy now, if any is loaded. */
    private readonly activeVersion: (strategy: string) => string | undefined,
  ) {}

  async modelMetrics(query: ModelMetricsQuery): Promise<ModelMetrics> {
    const strategy = query.strategy || DEFAULT_STRATEGY;
    if (!findStrategy(strategy)) throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"`, { strategy });
    if (query.from && query.to && query.from > query.to) {
      throw badUserInput(`from (${query.from.toISOString()}) is after to (${query.to.toISOString()})`);
    }
    const version = query.version ?? this.activeVersion(strategy);
    const row = await this.repository.realized({ strategy, version, symbol: query.symbol, from: query.from, to: query.to });
    const bins = new Map(row.bins.map((b) => [b.bin, b]));
    return {
      source: 'realized',
      sampleSize: row.sampleSize,
      accuracy: row.accuracy,
      precision: row.precision,
      recall: row.recall,
      f1: row.f1,
      brier: row.brier,
      baselineBrier: row.baselineBrier,
      logLoss: row.logLoss,
      ece: row.ece,
      intervalCoverage: row.intervalCoverage,
      calibration: Array.from({ length: CALIBRATION_BINS }, (_, i) => {
        const bin = bins.get(i);
        return {
          lower: i / CALIBRATION_BINS,
          upper: (i + 1) / CALIBRATION_BINS,
          count: bin?.count ?? 0,
          meanPredicted: bin?.meanPredicted ?? null,
          observedRate: bin?.observedRate ?? null,
        };
      }),
      from: query.from ?? row.first,
      to: query.to ?? row.last,
    };
  }
}
