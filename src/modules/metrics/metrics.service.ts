import { codedError, ErrorCode, badUserInput } from '../../shared/errors.js';
import type { EstimationMethod, MetricEstimate, MetricsVerdict, ModelMetrics } from '../models/index.js';
import { DEFAULT_STRATEGY, findStrategy } from '../../domain/strategies.js';
import { CALIBRATION_BINS, type MetricsRepository } from './metrics.repository.js';
import { BOOTSTRAP_BLOCK, BOOTSTRAP_METHOD, DEFAULT_REPLICATES, METRIC_NAMES, blockBootstrap } from '../../domain/statistics.js';

export interface MetricsServiceDeps extends MetricsServiceOptions {
  readonly repository: MetricsRepository;
  /** The version serving a strategy now, if any is loaded. */
  readonly activeVersion: (strategy: string) => string | undefined;
}

export interface MetricsServiceOptions {
  /** The market this gateway predicts from (STORED_MARKET or SYNTHETIC_MARKET): what is measured unless a query names another. */
  readonly servingMarket: string;
  /** The up-rate a version's manifest says it was given at training time (`offlineMetrics.trainingBaseRate`). */
  readonly trainingBaseRate?: (strategy: string, version: string) => number | undefined;
  /** Bootstrap replicates (default 1,000). */
  readonly replicates?: number;
  /** Most rows read for the estimates; more matching rows leave them out, saying so (default 1,000,000). */
  readonly maxRows?: number;
  /**
   * Told after each answer that describes one model version over all symbols of the serving market
   * (the sibyl_model_interval_coverage gauges): the 95% interval's realized coverage and its rows.
   */
  readonly onVersionCoverage?: (strategy: string, version: string, coverage: number, samples: number) => void;
}

/**
 * Fewer calendar months than this and a month-block bootstrap has too little to resample: a percentile
 * interval from 2-5 blocks is far narrower than the truth, so none is given.
 */
export const MIN_ESTIMATE_BLOCKS = 6;

export interface ModelMetricsQuery {
  readonly strategy: string;
  readonly version?: string | undefined;
  readonly symbol?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  /** The market whose predictions to measure; default the serving market. */
  readonly source?: string | undefined;
  /**
   * Asked by the promotion evaluator on its own schedule, not by a person: leaves the
   * sibyl_model_interval_coverage gauges as the last person's question set them.
   */
  readonly quiet?: boolean | undefined;
}

/**
 * Live model metrics (`source: "realized"`): how the predictions Sibyl actually served turned out, from
 * the outcomes the outcome job stored, over one market's predictions (the serving market's unless the
 * query names another: a synthetic run is never counted as the real model's track record). Without a
 * `version` it measures the strategy's active version (mixing versions would describe no model); with
 * no active version loaded, every version recorded.
 * No resolved rows is an answer (sampleSize 0, null metrics), not an error.
 */
export class MetricsService {
  private readonly repository: MetricsRepository;
  private readonly activeVersion: (strategy: string) => string | undefined;
  private readonly options: MetricsServiceOptions;

  constructor({ repository, activeVersion, ...options }: MetricsServiceDeps) {
    this.repository = repository;
    this.activeVersion = activeVersion;
    this.options = options;
  }

  async modelMetrics(query: ModelMetricsQuery): Promise<ModelMetrics> {
    const strategy = query.strategy || DEFAULT_STRATEGY;
    if (!findStrategy(strategy)) throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"`, { strategy });
    if (query.from && query.to && query.from > query.to) {
      throw badUserInput(`from (${query.from.toISOString()}) is after to (${query.to.toISOString()})`);
    }
    const version = query.version ?? this.activeVersion(strategy);
    const maxRows = this.options.maxRows ?? 1_000_000;
    const {
      metrics: row,
      rows,
      coverageByYear,
      coverageByMonth,
    } = await this.repository.realizedWithRows(
      { strategy, version, source: query.source ?? this.options.servingMarket, symbol: query.symbol, from: query.from, to: query.to },
      maxRows + 1,
    );
    const coverageSamples = coverageByYear.reduce((n, period) => n + period.samples, 0);
    const servingMarket = (query.source ?? this.options.servingMarket) === this.options.servingMarket;
    if (version !== undefined && query.symbol === undefined && servingMarket && row.intervalCoverage !== null && !query.quiet)
      this.options.onVersionCoverage?.(strategy, version, row.intervalCoverage, coverageSamples);
    const bins = new Map(row.bins.map((b) => [b.bin, b]));
    const reference = version === undefined ? undefined : this.options.trainingBaseRate?.(strategy, version);
    const base = row.baseRate;
    const trainingBaseRateBrier = reference === undefined || base === null ? null : reference * reference - 2 * reference * base + base;
    const estimates = this.estimates(rows, reference, maxRows, version);
    return {
      source: 'realized',
      sampleSize: row.sampleSize,
      accuracy: row.accuracy,
      precision: row.precision,
      recall: row.recall,
      f1: row.f1,
      brier: row.brier,
      baselineBrier: row.baselineBrier,
      baseRate: base,
      trainingBaseRate: reference ?? null,
      baselineAccuracy: reference === undefined || base === null ? null : reference >= 0.5 ? base : 1 - base,
      trainingBaseRateBrier,
      hindsightBaseRateBrier: row.baselineBrier,
      brierSkillVsTrainingBaseRate: row.brier !== null && trainingBaseRateBrier ? 1 - row.brier / trainingBaseRateBrier : null,
      brierSkillVsHindsightBaseRate: row.brier !== null && row.baselineBrier ? 1 - row.brier / row.baselineBrier : null,
      logLoss: row.logLoss,
      ece: row.ece,
      intervalCoverage: row.intervalCoverage,
      coverageByYear,
      coverageByMonth,
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
      ...estimates,
    };
  }

  /**
   * The asOf of the latest realized outcome of a version's predictions (the serving market's unless
   * `source` says otherwise): where the promotion evaluator's health window ends. Undefined when none.
   */
  async latestOutcome(strategy: string, version: string, source?: string): Promise<Date | undefined> {
    const latest = await this.repository.latestResolved({ strategy, version, source: source ?? this.options.servingMarket });
    return latest ?? undefined;
  }

  private estimates(
    rows: ReadonlyArray<{ block: number; p: number; y: number; covered: boolean | null }>,
    reference: number | undefined,
    maxRows: number,
    version: string | undefined,
  ): { estimates: MetricEstimate[]; estimation: EstimationMethod | null; estimatesNote: string | null; verdict: MetricsVerdict | null } {
    const none = (note: string) => ({ estimates: [], estimation: null, estimatesNote: note, verdict: null });
    if (rows.length === 0) return none('no resolved predictions match');
    if (rows.length > maxRows)
      return none(
        `more than ${maxRows} resolved predictions match (METRICS_ESTIMATES_MAX_ROWS); narrow the query with from/to/symbol for estimates`,
      );
    const months = new Set(rows.map((r) => r.block)).size;
    if (months < MIN_ESTIMATE_BLOCKS)
      return none(`the rows span ${months} calendar month(s); intervals need at least ${MIN_ESTIMATE_BLOCKS}`);
    const result = blockBootstrap(rows, reference ?? null, { replicates: this.options.replicates ?? DEFAULT_REPLICATES });
    const missing = METRIC_NAMES.filter((m) => !result.estimates.some((e) => e.metric === m));
    const why: string[] = [];
    if (reference === undefined) {
      why.push(
        version === undefined
          ? 'several versions are measured together, so there is no one training base rate (ask for a version)'
          : `the manifest of version ${version} states no training base rate`,
      );
    }
    const unexplained = missing.filter(
      (m) => reference !== undefined || !['accuracyOverBaseline', 'brierSkillVsTrainingBaseRate'].includes(m),
    );
    if (unexplained.length)
      why.push(`${unexplained.join(', ')}: undefined on these rows (e.g. one outcome class only, or no 95% interval outcomes)`);
    return {
      estimates: result.estimates,
      estimation: {
        method: BOOTSTRAP_METHOD,
        block: BOOTSTRAP_BLOCK,
        blocks: result.blocks,
        replicates: result.replicates,
        seed: result.seed,
        level: result.level,
      },
      estimatesNote: why.length ? `missing: ${why.join('; ')}` : null,
      verdict: result.verdict as MetricsVerdict | null,
    };
  }
}
