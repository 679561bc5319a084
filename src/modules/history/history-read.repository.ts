import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { HistorySignal } from './history.types.js';

/** One bucket of confidence history (or, from {@link HistoryReadRepository.lastPoints}, one prediction). */
export interface ConfidencePointRow {
  readonly time: Date;
  /** Mean over the bucket. */
  readonly probability: number;
  readonly confidence: number;
  /** Lowest and highest confidence in the bucket. */
  readonly min: number;
  readonly max: number;
  readonly count: number;
  /** The signal of the bucket's latest prediction. */
  readonly signal: HistorySignal | null;
}

export interface ConfidenceTrendRow {
  readonly symbol: string;
  readonly current: number | null;
  readonly mean: number | null;
  readonly min: number | null;
  readonly max: number | null;
  /** Least-squares slope of confidence against time, per day. */
  readonly slope: number | null;
  /** Sample standard deviation of confidence. */
  readonly volatility: number | null;
  readonly samples: number;
}

export interface HistoryRange {
  readonly symbol: string;
  readonly strategy: string;
  /** Undefined: every model version of the strategy. */
  readonly version?: string | undefined;
  readonly from: Date;
  /** Inclusive. */
  readonly to: Date;
  readonly bucketMs: number;
}

export interface LastPointsKey {
  readonly symbol: string;
  readonly strategy: string;
  readonly version: string;
  readonly last: number;
}

/** date_bin's origin: buckets of whole hours and days start at whole UTC hours and midnights; weeks start on Saturdays (2000-01-01). */
const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;

/**
 * All reads of `prediction_history` for GraphQL. Every statement is served by the (symbol, strategy,
 * time desc) index or the hourly rollup's key; none needs TimescaleDB (date_bin is core PostgreSQL since
 * 14, and PGlite has it).
 */
const HOUR_MS = 3_600_000;

export class HistoryReadRepository {
  /**
   * `hourlyRollup`: whether `prediction_confidence_hourly` exists and is kept by triggers (migration
   * 0005 creates it without TimescaleDB). Default true; main.ts passes false on TimescaleDB.
   */
  constructor(
    private readonly db: Db,
    private readonly options: { hourlyRollup?: boolean } = {},
  ) {}

  /**
   * Buckets of `bucketMs` over [from, to], oldest first; empty buckets are absent. Buckets of whole
   * hours read the hourly rollup for the hours that lie entirely inside the range and the raw rows only
   * for the partial hours at its ends, so a year costs ~9k rollup rows instead of every prediction; the
   * answer is the same (means are sums over counts; the signal is that of the latest row).
   */
  async confidenceHistory(range: HistoryRange): Promise<ConfidencePointRow[]> {
    const fullStart = Math.ceil(range.from.getTime() / HOUR_MS) * HOUR_MS;
    const fullEnd = Math.floor(range.to.getTime() / HOUR_MS) * HOUR_MS;
    const useRollup = (this.options.hourlyRollup ?? true) && range.bucketMs % HOUR_MS === 0 && fullStart < fullEnd;
    const bucket = sql`date_bin(make_interval(secs => ${range.bucketMs / 1000}::float8), time, ${ORIGIN})`;
    if (!useRollup) {
      const { rows } = await sql<ConfidencePointRow>`
        select ${bucket} as time,
               avg(probability) as probability, avg(confidence) as confidence,
               min(confidence) as min, max(confidence) as max, count(*)::int as count,
               (array_agg(signal order by time desc))[1] as signal
        from prediction_history
        where symbol = ${range.symbol} and strategy = ${range.strategy} ${versionFilter(range.version)}
          and time >= ${range.from}::timestamptz and time <= ${range.to}::timestamptz
        group by 1
        order by 1
      `.execute(this.db);
      return rows;
    }
    const start = new Date(fullStart);
    const end = new Date(fullEnd);
    const { rows } = await sql<ConfidencePointRow>`
      with parts as (
        select bucket as time, count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal
        from prediction_confidence_hourly
        where symbol = ${range.symbol} and strategy = ${range.strategy} ${versionFilter(range.version)}
          and bucket >= ${start}::timestamptz and bucket < ${end}::timestamptz
        union all
        select time, 1, probability, confidence, confidence, confidence, time, signal
        from prediction_history
        where symbol = ${range.symbol} and strategy = ${range.strategy} ${versionFilter(range.version)}
          and time >= ${range.from}::timestamptz and time < ${start}::timestamptz
        union all
        select time, 1, probability, confidence, confidence, confidence, time, signal
        from prediction_history
        where symbol = ${range.symbol} and strategy = ${range.strategy} ${versionFilter(range.version)}
          and time >= ${end}::timestamptz and time <= ${range.to}::timestamptz
      )
      select ${bucket} as time,
             sum(sum_probability) / sum(count) as probability, sum(sum_confidence) / sum(count) as confidence,
             min(min_confidence) as min, max(max_confidence) as max, sum(count)::int as count,
             (array_agg(last_signal order by last_time desc))[1] as signal
      from parts
      group by 1
      order by 1
    `.execute(this.db);
    return rows;
  }

  /** The newest recorded asOf of a symbol and strategy, if any. */
  async latestTime(symbol: string, strategy: string, version?: string): Promise<Date | undefined> {
    const { rows } = await sql<{ time: Date | null }>`
      select max(time) as time from prediction_history
      where symbol = ${symbol} and strategy = ${strategy} ${versionFilter(version)}
    `.execute(this.db);
    return rows[0]?.time ?? undefined;
  }

  /** Which of `symbols` have any recorded prediction (any strategy). */
  async recordedSymbols(symbols: readonly string[]): Promise<Set<string>> {
    const { rows } = await sql<{ symbol: string }>`
      select s.symbol from unnest(${[...symbols]}::text[]) as s(symbol)
      where exists (select 1 from prediction_history h where h.symbol = s.symbol)
    `.execute(this.db);
    return new Set(rows.map((r) => r.symbol));
  }

  /**
   * Confidence statistics per symbol over the `windowMs` ending at that symbol's latest recorded
   * prediction of the strategy, in ONE statement for all symbols. A symbol with no rows is absent.
   */
  async trends(symbols: readonly string[], strategy: string, windowMs: number, version?: string): Promise<ConfidenceTrendRow[]> {
    const { rows } = await sql<ConfidenceTrendRow>`
      with latest as (
        select s.symbol, l.time
        from unnest(${[...symbols]}::text[]) as s(symbol)
        cross join lateral (
          select max(time) as time from prediction_history h
          where h.symbol = s.symbol and h.strategy = ${strategy} ${versionFilter(version, sql`h.`)}
        ) l
        where l.time is not null
      )
      select latest.symbol,
             (array_agg(h.confidence order by h.time desc))[1] as current,
             avg(h.confidence) as mean, min(h.confidence) as min, max(h.confidence) as max,
             regr_slope(h.confidence, extract(epoch from h.time)::float8 / 86400) as slope,
             stddev_samp(h.confidence) as volatility,
             count(*)::int as samples
      from latest
      join prediction_history h
        on h.symbol = latest.symbol and h.strategy = ${strategy} ${versionFilter(version, sql`h.`)}
       and h.time > latest.time - make_interval(secs => ${windowMs / 1000}::float8) and h.time <= latest.time
      group by latest.symbol
    `.execute(this.db);
    return rows;
  }

  /**
   * The last `last` predictions of each key (symbol, strategy, model version), oldest first, in ONE
   * statement for all keys: a lateral backward scan of the (symbol, strategy, time desc) index per key.
   * Returns one list per key, in the order of `keys`.
   */
  async lastPoints(keys: readonly LastPointsKey[]): Promise<ConfidencePointRow[][]> {
    const result = keys.map((): ConfidencePointRow[] => []);
    if (keys.length === 0) return result;
    const { rows } = await sql<ConfidencePointRow & { key: number }>`
      select k.i::int - 1 as key, p.time, p.probability, p.confidence, p.confidence as min, p.confidence as max,
             1 as count, p.signal
      from unnest(
        ${keys.map((k) => k.symbol)}::text[], ${keys.map((k) => k.strategy)}::text[],
        ${keys.map((k) => k.version)}::text[], ${keys.map((k) => k.last)}::int[]
      ) with ordinality as k(symbol, strategy, version, n, i)
      cross join lateral (
        select h.time, h.probability, h.confidence, h.signal from prediction_history h
        where h.symbol = k.symbol and h.strategy = k.strategy and h.model_version = k.version
        order by h.time desc
        limit k.n
      ) p
      order by k.i, p.time
    `.execute(this.db);
    for (const { key, ...point } of rows) result[key]!.push(point);
    return result;
  }
}

function versionFilter(version: string | null | undefined, prefix = sql``) {
  return version == null ? sql`` : sql`and ${prefix}model_version = ${version}`;
}
