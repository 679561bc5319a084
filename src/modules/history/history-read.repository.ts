import { sql } from 'kysely';
import type { Db } from '../../infra/db/index.js';
import type { Signal } from '../../domain/signal.js';

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
  readonly signal: Signal | null;
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
  /** The market whose predictions to read (`market_source`). */
  readonly source: string;
  readonly from: Date;
  /** Inclusive. */
  readonly to: Date;
  readonly bucketMs: number;
}

export interface LastPointsKey {
  readonly symbol: string;
  readonly strategy: string;
  readonly version: string;
  /** The market whose predictions to read (`market_source`). */
  readonly source: string;
  readonly last: number;
}

/** date_bin's origin: buckets of whole hours and days start at whole UTC hours and midnights; weeks start on Saturdays (2000-01-01). */
const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;

/**
 * All reads of `prediction_history` for GraphQL, each of ONE market's rows (`market_source`): a
 * synthetic run's predictions are never read as the real market's. Every statement is served by the
 * (symbol, strategy, market_source, time desc) index or the rollups' keys; none needs TimescaleDB
 * (date_bin is core PostgreSQL since 14, and PGlite has it).
 */
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * Where confidenceHistory finds pre-aggregated buckets:
 * - `tables`: the trigger-kept rollup tables `prediction_confidence_hourly` and `_daily` (migrations
 *   0005/0008/0009 create them on plain PostgreSQL and PGlite);
 * - `continuous-aggregates`: TimescaleDB's `prediction_history_hourly` and `_daily` (0012), read only
 *   where they are known to be exact, the raw rows elsewhere;
 * - `none`: the raw rows only.
 */
export type HistoryRollups = 'tables' | 'continuous-aggregates' | 'none';

/** The rollups a migrated database has: the continuous aggregates on TimescaleDB, the tables elsewhere. */
export function historyRollupsOf(database: { readonly timescale: boolean }): HistoryRollups {
  return database.timescale ? 'continuous-aggregates' : 'tables';
}

type Level = 'hourly' | 'daily';
const ROLLUP_TABLES: Record<Level, string> = { hourly: 'prediction_confidence_hourly', daily: 'prediction_confidence_daily' };
const AGGREGATES: Record<Level, { view: string; width: string }> = {
  hourly: { view: 'prediction_history_hourly', width: '1 hour' },
  daily: { view: 'prediction_history_daily', width: '1 day' },
};

export class HistoryReadRepository {
  /** `rollups`: see {@link HistoryRollups}; {@link historyRollupsOf} gives a migrated database's. */
  constructor(
    private readonly db: Db,
    private readonly options: { readonly rollups: HistoryRollups },
  ) {}

  /**
   * Buckets of `bucketMs` over [from, to], oldest first; empty buckets are absent. Buckets of whole
   * hours read the rollups instead of the raw rows wherever they can: buckets of whole days take the
   * days that lie entirely inside the range from the daily rollup, the whole hours left at either end
   * from the hourly one, and only the partial hours at the range's ends from the raw rows (buckets of
   * whole hours: hourly rollup and raw rows). A year of 1-day buckets is then ~365 rollup rows instead
   * of ~8,760 (or every prediction); the answer is the same (means are sums over counts; the signal
   * is that of the latest row). Bucket origins are whole UTC hours and midnights, so every rollup row
   * falls into exactly one bucket.
   *
   * With continuous aggregates, a rollup bucket is taken from the aggregate only where
   * `prediction_history_unmaterialized` (migration 0012) says it is exact, i.e. materialized and not
   * modified since (a first, small statement asks where that is); a day that is not comes from the
   * hourly aggregate's exact hours, and an hour that is not from the raw rows. Right after a refresh
   * that is the buckets past the watermark only; rows recorded for older asOfs make their hours raw
   * until the next refresh.
   */
  async confidenceHistory(range: HistoryRange): Promise<ConfidencePointRow[]> {
    const from = range.from.getTime();
    const to = range.to.getTime();
    const hours = { start: Math.ceil(from / HOUR_MS) * HOUR_MS, end: Math.floor(to / HOUR_MS) * HOUR_MS };
    const bucket = sql`date_bin(make_interval(secs => ${range.bucketMs / 1000}::float8), time, ${ORIGIN})`;
    const kind = this.options.rollups;
    const rollups = kind !== 'none' && range.bucketMs % HOUR_MS === 0 && hours.start < hours.end;
    if (!rollups) {
      const { rows } = await sql<ConfidencePointRow>`
        select ${bucket} as time,
               avg(probability) as probability, avg(confidence) as confidence,
               min(confidence) as min, max(confidence) as max, count(*)::int as count,
               (array_agg(signal order by time desc))[1] as signal
        from prediction_history
        where symbol = ${range.symbol} and strategy = ${range.strategy} and market_source = ${range.source} ${versionFilter(range.version)}
          and time >= ${range.from}::timestamptz and time <= ${range.to}::timestamptz
        group by 1
        order by 1
      `.execute(this.db);
      return rows;
    }
    // Whole days inside the range, for buckets of whole days; otherwise an empty span at the hours' end.
    const dayStart = Math.ceil(from / DAY_MS) * DAY_MS;
    const dayEnd = Math.floor(to / DAY_MS) * DAY_MS;
    const days =
      range.bucketMs % DAY_MS === 0 && dayStart < dayEnd ? { start: dayStart, end: dayEnd } : { start: hours.end, end: hours.end };
    const key = sql`symbol = ${range.symbol} and strategy = ${range.strategy} and market_source = ${range.source}
      ${versionFilter(range.version)}`;
    const at = (ms: number | Date) => sql`${new Date(ms)}::timestamptz`;
    const rollupColumns = sql`count, sum_probability, sum_confidence, min_confidence, max_confidence, last_time, last_signal`;
    const fromRaw = (start: number | Date, end: number | Date, endInclusive = false) => sql`
        select time, 1 as count, probability as sum_probability, confidence as sum_confidence, confidence as min_confidence,
               confidence as max_confidence, time as last_time, signal as last_signal
        from prediction_history
        where ${key} and time >= ${at(start)} and time ${endInclusive ? sql`<=` : sql`<`} ${at(end)}`;
    const fromTable = (table: string, start: number, end: number) => sql`
        select bucket as time, ${rollupColumns}
        from ${sql.id(table)}
        where ${key} and bucket >= ${at(start)} and bucket < ${at(end)}`;
    // Continuous aggregates: the exact stretches of [start, end) from the view, the stale ones raw.
    const stale = kind === 'continuous-aggregates' ? await this.#unmaterialized(hours.start, hours.end) : undefined;
    // A stale day falls back to the hourly aggregate's exact hours, and only stale hours to the raw rows.
    const fromRollup = (level: Level, start: number, end: number): Array<ReturnType<typeof fromRaw>> => {
      if (!stale) return [fromTable(ROLLUP_TABLES[level], start, end)];
      const { exact, inexact } = splitSpan(start, end, stale[level]);
      return [
        ...exact.map(([a, b]) => fromTable(AGGREGATES[level].view, a, b)),
        ...inexact.flatMap(([a, b]) => (level === 'daily' ? fromRollup('hourly', a, b) : [fromRaw(a, b)])),
      ];
    };
    const parts = [
      fromRaw(range.from, hours.start),
      ...fromRollup('hourly', hours.start, days.start),
      ...(days.start < days.end ? fromRollup('daily', days.start, days.end) : []),
      ...fromRollup('hourly', days.end, hours.end),
      fromRaw(hours.end, range.to, true),
    ];
    const { rows } = await sql<ConfidencePointRow>`
      with parts as (${sql.join(parts, sql` union all `)})
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

  /**
   * Where in [start, end) each continuous aggregate may differ from the raw rows (migration 0012's
   * `prediction_history_unmaterialized`), as disjoint [start, end) spans in milliseconds, oldest first.
   * A statement of its own, so that the read itself carries constant bounds: with the spans joined in
   * laterally, PostgreSQL planned the raw scan over every chunk with default row estimates (a million
   * rows per span), and JIT-compiling that plan took seconds.
   */
  async #unmaterialized(start: number, end: number): Promise<Record<Level, Array<[number, number]>>> {
    const within = sql`tstzmultirange(tstzrange(${new Date(start)}::timestamptz, ${new Date(end)}::timestamptz))`;
    const spans = (level: Level) => sql`
      select ${level}::text as level, lower(s) as start, upper(s) as end
      from unnest(prediction_history_unmaterialized(${AGGREGATES[level].view}::regclass, ${AGGREGATES[level].width}::interval) * ${within}) as s`;
    const { rows } = await sql<{
      level: Level;
      start: Date;
      end: Date;
    }>`${spans('hourly')} union all ${spans('daily')} order by 1, 2`.execute(this.db);
    const result: Record<Level, Array<[number, number]>> = { hourly: [], daily: [] };
    for (const row of rows) result[row.level].push([row.start.getTime(), row.end.getTime()]);
    return result;
  }

  /** The newest asOf of a symbol and strategy recorded from market `source`, if any. */
  async latestTime(symbol: string, strategy: string, source: string, version?: string): Promise<Date | undefined> {
    const { rows } = await sql<{ time: Date | null }>`
      select max(time) as time from prediction_history
      where symbol = ${symbol} and strategy = ${strategy} and market_source = ${source} ${versionFilter(version)}
    `.execute(this.db);
    return rows[0]?.time ?? undefined;
  }

  /** Which of `symbols` have any recorded prediction (any strategy, any market: it only tells known from unknown). */
  async recordedSymbols(symbols: readonly string[]): Promise<Set<string>> {
    const { rows } = await sql<{ symbol: string }>`
      select s.symbol from unnest(${[...symbols]}::text[]) as s(symbol)
      where exists (select 1 from prediction_history h where h.symbol = s.symbol)
    `.execute(this.db);
    return new Set(rows.map((r) => r.symbol));
  }

  /**
   * Confidence statistics per symbol over the `windowMs` ending at that symbol's latest prediction of
   * the strategy recorded from market `source`, in ONE statement for all symbols. A symbol with no rows
   * is absent.
   */
  async trends(
    symbols: readonly string[],
    strategy: string,
    windowMs: number,
    source: string,
    version?: string,
  ): Promise<ConfidenceTrendRow[]> {
    const { rows } = await sql<ConfidenceTrendRow>`
      with latest as (
        select s.symbol, l.time
        from unnest(${[...symbols]}::text[]) as s(symbol)
        cross join lateral (
          select max(time) as time from prediction_history h
          where h.symbol = s.symbol and h.strategy = ${strategy} and h.market_source = ${source} ${versionFilter(version, sql`h.`)}
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
        on h.symbol = latest.symbol and h.strategy = ${strategy} and h.market_source = ${source} ${versionFilter(version, sql`h.`)}
       and h.time > latest.time - make_interval(secs => ${windowMs / 1000}::float8) and h.time <= latest.time
      group by latest.symbol
    `.execute(this.db);
    return rows;
  }

  /**
   * The last `last` predictions of each key (symbol, strategy, model version, market), oldest first, in
   * ONE statement for all keys: a lateral backward scan of the unique key's index per key.
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
        ${keys.map((k) => k.version)}::text[], ${keys.map((k) => k.source)}::text[], ${keys.map((k) => k.last)}::int[]
      ) with ordinality as k(symbol, strategy, version, source, n, i)
      cross join lateral (
        select h.time, h.probability, h.confidence, h.signal from prediction_history h
        where h.symbol = k.symbol and h.strategy = k.strategy and h.model_version = k.version and h.market_source = k.source
        order by h.time desc
        limit k.n
      ) p
      order by k.i, p.time
    `.execute(this.db);
    for (const { key, ...point } of rows) result[key]!.push(point);
    return result;
  }
}

/**
 * [start, end) cut into the stretches outside `stale` (exact) and inside it (inexact); `stale` is
 * sorted and disjoint, as range_agg returns it. Milliseconds.
 */
export function splitSpan(
  start: number,
  end: number,
  stale: ReadonlyArray<readonly [number, number]>,
): { exact: Array<[number, number]>; inexact: Array<[number, number]> } {
  const exact: Array<[number, number]> = [];
  const inexact: Array<[number, number]> = [];
  let at = start;
  for (const [a, b] of stale) {
    const lo = Math.max(a, start);
    const hi = Math.min(b, end);
    if (lo >= hi) continue;
    if (at < lo) exact.push([at, lo]);
    inexact.push([lo, hi]);
    at = hi;
  }
  if (at < end) exact.push([at, end]);
  return { exact, inexact };
}

function versionFilter(version: string | null | undefined, prefix = sql``) {
  return version == null ? sql`` : sql`and ${prefix}model_version = ${version}`;
}
