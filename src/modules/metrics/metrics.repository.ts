import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';

/** Rows to measure: resolved predictions of one strategy, optionally narrowed. */
export interface MetricsFilter {
  readonly strategy: string;
  /** The market whose predictions to measure (`market_source`): one market's, never a mix. */
  readonly source: string;
  readonly version?: string | null | undefined;
  readonly symbol?: string | null | undefined;
  readonly from?: Date | null | undefined;
  /** Inclusive. */
  readonly to?: Date | null | undefined;
}

export interface RealizedMetricsRow {
  readonly sampleSize: number;
  /** Share of the rows whose outcome was up (the hindsight base rate). */
  readonly baseRate: number | null;
  readonly accuracy: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
  readonly brier: number | null;
  readonly baselineBrier: number | null;
  readonly logLoss: number | null;
  readonly ece: number | null;
  readonly intervalCoverage: number | null;
  readonly first: Date | null;
  readonly last: Date | null;
  readonly bins: ReadonlyArray<{ bin: number; count: number; meanPredicted: number; observedRate: number }>;
}

/**
 * Probabilities are clamped to [EPS, 1 − EPS] for log loss, so a confident miss costs −ln(1e-15) ≈ 34.5
 * instead of infinity: the same EPS as src/training/evaluate.ts, so live and offline log losses compare.
 */
export const LOG_LOSS_EPS = 1e-15;
/** Equal-width calibration bins over [0, 1]; the last includes 1 (as in evaluate.ts). */
export const CALIBRATION_BINS = 10;

/**
 * Model metrics over realized outcomes, computed by PostgreSQL in ONE statement over
 * `prediction_outcomes` (migration 0013: one row per resolved prediction, carrying the prediction's
 * probability and interval level; its primary key serves the filter on strategy, market and version).
 * Definitions, for rows with p = probability, y = (realized_return > 0):
 *
 * - accuracy = mean of `correct` = share where (p ≥ 0.5) = y; precision, recall and F1 of the class
 *   "up" at threshold 0.5 (null where undefined: no predicted or no actual ups);
 * - brier = mean (p − y)²; baselineBrier = b(1 − b) with b the base rate of the same rows (the Brier
 *   score of always predicting b); logLoss with p clamped to [1e-15, 1 − 1e-15];
 * - ece = Σ count/n × |mean p − observed rate| over 10 equal-width bins;
 * - intervalCoverage = share of `covered` among rows whose interval is the 95% one.
 */
export class MetricsRepository {
  constructor(private readonly db: Db) {}

  /**
   * The aggregate metrics, the 95% coverage per year and month, and (up to `limit`) the rows behind them, read in one repeatable-read
   * transaction so both describe the same rows even while the outcomes job writes.
   */
  async realizedWithRows(
    filter: MetricsFilter,
    limit: number,
  ): Promise<{
    metrics: RealizedMetricsRow;
    rows: ScoredRow[];
    coverageByYear: PeriodCoverageRow[];
    coverageByMonth: PeriodCoverageRow[];
  }> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (tx) => ({
        metrics: await this.realized(filter, tx),
        rows: await this.scored(filter, limit, tx),
        coverageByYear: await this.coverageByPeriod(filter, 'year', tx),
        coverageByMonth: await this.coverageByPeriod(filter, 'month', tx),
      }));
  }

  /**
   * The resolved rows themselves, as the bootstrap needs them: UTC calendar month of asOf (year × 12 +
   * month − 1, as monthBlock in statistics.ts), probability, outcome, and whether the 95% interval held
   * it (null for rows without a 95% interval or whose interval outcome is unknown). At most `limit`.
   */
  async scored(filter: MetricsFilter, limit: number, db: Db = this.db): Promise<ScoredRow[]> {
    // Four comma-separated strings in one row rather than one row per prediction: building a row object
    // per prediction is slow on PGlite, and node-pg parses float8[] text slower than split()
    // (docs/decisions/hot-path-measurements.md).
    // float8 to text is exact (shortest round-trip form, PostgreSQL ≥ 12).
    const { rows } = await sql<{ block: string | null; p: string | null; y: string | null; covered: string | null }>`
      select string_agg(block::text, ',') as block, string_agg(p::text, ',') as p, string_agg(y::text, ',') as y, string_agg(covered, ',') as covered
      from (
        select (extract(year from time at time zone 'UTC') * 12 + extract(month from time at time zone 'UTC') - 1)::int as block,
               probability as p,
               (realized_return > 0)::int as y,
               case when interval_level <> 0.95 or covered is null then '' when covered then '1' else '0' end as covered
        from prediction_outcomes
        where ${sql.join(conditions(filter), sql` and `)}
        limit ${limit}
      ) r
    `.execute(db);
    const { block, p, y, covered } = rows[0]!;
    if (block === null || p === null || y === null || covered === null) return [];
    const blocks = block.split(',');
    const ps = p.split(',');
    const ys = y.split(',');
    const cs = covered.split(',');
    return blocks.map((b, i) => ({ block: Number(b), p: Number(ps[i]), y: Number(ys[i]), covered: cs[i] === '' ? null : cs[i] === '1' }));
  }

  /**
   * Coverage of the 95% interval per UTC calendar period of asOf ('YYYY' or 'YYYY-MM'), oldest first:
   * the rows intervalCoverage averages, grouped.
   */
  async coverageByPeriod(filter: MetricsFilter, unit: 'year' | 'month', db: Db = this.db): Promise<PeriodCoverageRow[]> {
    const format = unit === 'year' ? 'YYYY' : 'YYYY-MM';
    const { rows } = await sql<PeriodCoverageRow>`
      select to_char(time at time zone 'UTC', ${format}) as period,
             avg(covered::int::float8) as coverage,
             count(*)::int as samples
      from prediction_outcomes
      where ${sql.join([...conditions(filter), sql`interval_level = 0.95`, sql`covered is not null`], sql` and `)}
      group by 1
      order by 1
    `.execute(db);
    return rows;
  }

  /** The asOf of the latest resolved prediction matching `filter` (an index scan), or null when none is resolved. */
  async latestResolved(filter: MetricsFilter): Promise<Date | null> {
    const { rows } = await sql<{ latest: Date | null }>`
      select max(time) as latest from prediction_history where ${sql.join(conditions(filter), sql` and `)}
    `.execute(this.db);
    return rows[0]?.latest ?? null;
  }

  async realized(filter: MetricsFilter, db: Db = this.db): Promise<RealizedMetricsRow> {
    const where = conditions(filter);
    const eps = LOG_LOSS_EPS;
    const { rows } = await sql<RealizedMetricsRow>`
      with r as (
        select probability as p, greatest(least(probability, 1 - ${eps}::float8), ${eps}::float8) as pc,
               (realized_return > 0)::int as y, correct, covered, interval_level, time
        from prediction_outcomes
        where ${sql.join(where, sql` and `)}
      ),
      a as (
        select count(*)::int as n,
               avg(y::float8) as base,
               avg(correct::int::float8) as accuracy,
               count(*) filter (where p >= 0.5 and y = 1)::int as tp,
               count(*) filter (where p >= 0.5 and y = 0)::int as fp,
               count(*) filter (where p < 0.5 and y = 1)::int as fn,
               avg((p - y) * (p - y)) as brier,
               avg(-(y * ln(pc) + (1 - y) * ln(1 - pc))) as log_loss,
               avg(covered::int::float8) filter (where interval_level = 0.95 and covered is not null) as coverage,
               min(time) as first, max(time) as last
        from r
      ),
      b as (
        select least(floor(p * ${CALIBRATION_BINS})::int, ${CALIBRATION_BINS - 1}) as bin,
               count(*)::int as count, avg(p) as mean_predicted, avg(y::float8) as observed_rate
        from r
        group by 1
      )
      select a.n as "sampleSize",
             a.base as "baseRate",
             a.accuracy,
             a.tp::float8 / nullif(a.tp + a.fp, 0) as precision,
             a.tp::float8 / nullif(a.tp + a.fn, 0) as recall,
             case when a.tp > 0 then 2.0::float8 * a.tp / (2 * a.tp + a.fp + a.fn) end as f1,
             a.brier,
             a.base * (1 - a.base) as "baselineBrier",
             a.log_loss as "logLoss",
             (select sum(b.count::float8 / a.n * abs(b.mean_predicted - b.observed_rate)) from b) as ece,
             a.coverage as "intervalCoverage",
             a.first, a.last,
             (select coalesce(json_agg(json_build_object('bin', b.bin, 'count', b.count, 'meanPredicted', b.mean_predicted, 'observedRate', b.observed_rate) order by b.bin), '[]'::json) from b) as bins
      from a
    `.execute(db);
    return rows[0]!;
  }
  /**
   * The rows both versions `a` and `b` predicted, with a realized outcome, paired on (strategy, market,
   * symbol, asOf) and reduced per UTC day of asOf to each version's mean loss, in ONE statement: Brier
   * (p − y)² and log loss with p clamped as in {@link realized}; y from `a`'s row (both rows hold the same
   * bar's outcome). Oldest day first.
   */
  async pairedDailyLosses(filter: PairFilter, db: Db = this.db): Promise<PairedDayRow[]> {
    const eps = LOG_LOSS_EPS;
    const where = [
      sql`a.strategy = ${filter.strategy}`,
      sql`a.market_source = ${filter.source}`,
      sql`a.model_version = ${filter.a}`,
      ...(filter.from != null ? [sql`a.time >= ${filter.from}::timestamptz`] : []),
      ...(filter.to != null ? [sql`a.time <= ${filter.to}::timestamptz`] : []),
    ];
    const { rows } = await sql<PairedDayRow>`
      with p as (
        select to_char(a.time at time zone 'UTC', 'YYYY-MM-DD') as day,
               a.probability as pa, b.probability as pb,
               greatest(least(a.probability, 1 - ${eps}::float8), ${eps}::float8) as ca,
               greatest(least(b.probability, 1 - ${eps}::float8), ${eps}::float8) as cb,
               (a.realized_return > 0)::int as y
        from prediction_outcomes a
        join prediction_outcomes b
          on b.strategy = a.strategy and b.market_source = a.market_source and b.symbol = a.symbol and b.time = a.time
         and b.model_version = ${filter.b}
        where ${sql.join(where, sql` and `)}
      )
      select day, count(*)::int as rows,
             avg((pa - y) * (pa - y)) as "brierA", avg((pb - y) * (pb - y)) as "brierB",
             avg(-(y * ln(ca) + (1 - y) * ln(1 - ca))) as "logLossA", avg(-(y * ln(cb) + (1 - y) * ln(1 - cb))) as "logLossB"
      from p
      group by day
      order by day
    `.execute(db);
    return rows;
  }
}

/** Two versions of a strategy to compare on the rows both predicted. */
export interface PairFilter {
  readonly strategy: string;
  readonly source: string;
  readonly a: string;
  readonly b: string;
  readonly from?: Date | null | undefined;
  /** Inclusive. */
  readonly to?: Date | null | undefined;
}

/** One UTC day of paired rows: how many, and each version's mean Brier score and log loss over them. */
export interface PairedDayRow {
  readonly day: string;
  readonly rows: number;
  readonly brierA: number;
  readonly brierB: number;
  readonly logLossA: number;
  readonly logLossB: number;
}

function conditions(filter: MetricsFilter) {
  return [
    sql`strategy = ${filter.strategy}`,
    sql`market_source = ${filter.source}`,
    ...(filter.version != null ? [sql`model_version = ${filter.version}`] : []),
    ...(filter.symbol != null ? [sql`symbol = ${filter.symbol}`] : []),
    ...(filter.from != null ? [sql`time >= ${filter.from}::timestamptz`] : []),
    ...(filter.to != null ? [sql`time <= ${filter.to}::timestamptz`] : []),
  ];
}

export interface PeriodCoverageRow {
  readonly period: string;
  readonly coverage: number;
  readonly samples: number;
}

export interface ScoredRow {
  readonly block: number;
  readonly p: number;
  readonly y: number;
  readonly covered: boolean | null;
}
