import {
  COMPARISON_TEST,
  LAG_RULE,
  MIN_COMPARISON_DAYS,
  compareDailyLosses,
  type DailyLoss,
  type LossComparisonResult,
} from '../../domain/comparison.js';
import { BOOTSTRAP_BLOCK, BOOTSTRAP_METHOD, DEFAULT_REPLICATES, DEFAULT_SEED } from '../../domain/statistics.js';
import { DEFAULT_STRATEGY, findStrategy } from '../../domain/strategies.js';
import { badUserInput, codedError, ErrorCode } from '../../shared/errors.js';
import { ComparisonVerdict, type LossComparison, type ModelComparison } from './comparison.type.js';
import type { MetricsRepository, PairedDayRow } from './metrics.repository.js';
import { MIN_ESTIMATE_BLOCKS } from './metrics.service.js';

export interface CompareModelsQuery {
  readonly strategy: string;
  readonly a: string;
  readonly b: string;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  readonly level?: number | undefined;
  readonly source?: string | undefined;
}

export interface ComparisonServiceDeps {
  readonly repository: Pick<MetricsRepository, 'pairedDailyLosses'>;
  /** Whether a version of a strategy is loaded (in the models directory and verified). */
  readonly knownVersion: (strategy: string, version: string) => boolean;
  /** The market this gateway predicts from: compared unless a query names another. */
  readonly servingMarket: string;
  /** Bootstrap replicates (default 1,000). */
  readonly replicates?: number;
}

/**
 * `compareModels`: two versions of a strategy on the rows both predicted (an active and a shadow
 * version are scored on the same rows), from outcomes the outcome job stored. Both versions must be
 * loaded (a name that is not is a mistake more often than a retired version). No paired rows is an
 * answer (days 0, null figures), not an error. The statistics are in src/domain/comparison.ts.
 */
export class ComparisonService {
  constructor(private readonly deps: ComparisonServiceDeps) {}

  async compareModels(query: CompareModelsQuery): Promise<ModelComparison> {
    const strategy = query.strategy || DEFAULT_STRATEGY;
    const definition = findStrategy(strategy);
    if (!definition) throw codedError(ErrorCode.UNKNOWN_STRATEGY, `Unknown strategy "${strategy}"`, { strategy });
    for (const version of [query.a, query.b]) {
      if (!this.deps.knownVersion(strategy, version))
        throw badUserInput(`version "${version}" of ${strategy} is not loaded`, { strategy, version });
    }
    if (query.a === query.b)
      throw badUserInput(`a and b are both ${query.a}: compare two different versions`, { strategy, version: query.a });
    if (query.from && query.to && query.from > query.to) {
      throw badUserInput(`from (${query.from.toISOString()}) is after to (${query.to.toISOString()})`);
    }
    const source = query.source ?? this.deps.servingMarket;
    const days = await this.deps.repository.pairedDailyLosses({ strategy, source, a: query.a, b: query.b, from: query.from, to: query.to });
    const replicates = this.deps.replicates ?? DEFAULT_REPLICATES;
    const options = {
      horizonBars: definition.horizonBars,
      level: query.level ?? 0.95,
      replicates,
      seed: DEFAULT_SEED,
      minDays: MIN_COMPARISON_DAYS,
      minBlocks: MIN_ESTIMATE_BLOCKS,
    };
    const per = (loss: 'brier' | 'logLoss', pick: (d: PairedDayRow) => [number, number]) => {
      const daily: DailyLoss[] = days.map((d) => {
        const [meanA, meanB] = pick(d);
        return { day: d.day, rows: d.rows, meanA, meanB };
      });
      return view(loss, compareDailyLosses(daily, options));
    };
    const brier = per('brier', (d) => [d.brierA, d.brierB]);
    const logLoss = per('logLoss', (d) => [d.logLossA, d.logLossB]);
    const first = days[0]?.day;
    const last = days.at(-1)?.day;
    return {
      strategy,
      a: query.a,
      b: query.b,
      source,
      from: query.from ?? (first ? new Date(`${first}T00:00:00Z`) : null),
      to: query.to ?? (last ? new Date(`${last}T00:00:00Z`) : null),
      brier: brier.view,
      logLoss: logLoss.view,
      method: {
        test: COMPARISON_TEST,
        lag: brier.lag,
        lagRule: LAG_RULE,
        interval: BOOTSTRAP_METHOD,
        block: BOOTSTRAP_BLOCK,
        blocks: brier.blocks,
        replicates,
        seed: options.seed,
        level: options.level,
        minDays: options.minDays,
        minBlocks: options.minBlocks,
      },
    };
  }
}

function view(loss: string, r: LossComparisonResult): { view: LossComparison; lag: number; blocks: number } {
  return {
    lag: r.lag,
    blocks: r.blocks,
    view: {
      loss,
      meanA: r.meanA,
      meanB: r.meanB,
      meanDifference: r.meanDifference,
      interval: r.interval,
      longRunVariance: r.longRunVariance,
      dmStatistic: r.dmStatistic,
      pValue: r.pValue,
      days: r.days,
      rows: r.rows,
      mde80: r.mde80,
      daysStillNeeded: r.daysStillNeeded,
      verdict: ComparisonVerdict[r.verdict],
      note: r.note,
    },
  };
}
