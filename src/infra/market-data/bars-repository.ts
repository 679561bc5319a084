import { sql, type Selectable } from 'kysely';
import type { Db } from '../db/index.js';
import type { MarketBarsTable } from '../db/tables.js';
import { isQualityReason, valueFlags } from './bar-quality.js';
import type { Bar, FetchBarsOptions } from './market-data.js';

/**
 * Rows per INSERT statement. Bars travel as nine column arrays through `unnest`, so a statement binds
 * nine parameters however many rows it carries (a multi-row VALUES list binds nine per row, and
 * preparing those values dominated the import: docs/decisions/hot-path-measurements.md; `npm run bench
 * -- import` measures it today).
 */
const UPSERT_CHUNK_ROWS = 20_000;

const DAY_MS = 86_400_000;

type BarRow = Selectable<MarketBarsTable>;

/**
 * All SQL over `market_bars`. Every read answers for many symbols in one statement, as the
 * market-data contract requires; callers never loop over symbols.
 *
 * ```ts
 * const bars = new BarsRepository(database.db);
 * await bars.upsert(parsed.bars);                    // { inserted: 5402, updated: 0 }
 * await bars.fetchBars(['AAPL', 'MSFT'], { lookback: 60, until: new Date('2021-04-21') });
 * ```
 */
export class BarsRepository {
  constructor(private readonly db: Db) {}

  /**
   * The newest bar time each symbol has been fetched with, by this repository: where a fetch without
   * `until` starts its window. Only ever an estimate (bars arrive, tests truncate), so the answer never
   * depends on it; one number per stored symbol.
   */
  readonly #newestSeen = new Map<string, number>();

  /**
   * Inserts bars, replacing any stored bar with the same (symbol, time). All chunks run in one
   * transaction, so a bar refused by a CHECK constraint leaves the table exactly as it was.
   *
   * `updated` counts every bar that already existed, even when nothing in it changed: re-importing a
   * file reports all of its rows as updated. Comparing values first would cost a WHERE on every
   * conflict for a distinction no caller needs. If `bars` holds the same (symbol, time) twice, the
   * last one wins (PostgreSQL refuses to update one row twice in a statement, so they are merged here).
   */
  async upsert(bars: readonly Bar[]): Promise<{ inserted: number; updated: number }> {
    const rows = lastPerKey(bars).map(toRow);
    if (rows.length === 0) return { inserted: 0, updated: 0 };
    return this.db.transaction().execute(async (trx) => {
      let inserted = 0;
      for (let start = 0; start < rows.length; start += UPSERT_CHUNK_ROWS) {
        const chunk = rows.slice(start, start + UPSERT_CHUNK_ROWS);
        const column = <K extends keyof BarRow>(key: K) => chunk.map((row) => row[key]);
        const { rows: counts } = await sql<{ inserted: number }>`
          with written as (
            insert into market_bars (symbol, time, open, high, low, close, adj_close, volume, source, quality)
            select symbol, to_timestamp(epoch_ms / 1000.0), open, high, low, close, adj_close, volume, source,
                   string_to_array(quality, ',') from unnest(
              ${column('symbol')}::text[], ${epochMs(chunk)}::float8[], ${column('open')}::float8[],
              ${column('high')}::float8[], ${column('low')}::float8[], ${column('close')}::float8[],
              ${column('adj_close')}::float8[], ${column('volume')}::float8[], ${column('source')}::text[],
              ${chunk.map((row) => row.quality.join(','))}::text[]
            ) as bar(symbol, epoch_ms, open, high, low, close, adj_close, volume, source, quality)
            on conflict (symbol, time) do update set
              open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
              adj_close = excluded.adj_close, volume = excluded.volume, source = excluded.source, quality = excluded.quality
            -- xmax is 0 on a freshly inserted tuple and set on one written by the DO UPDATE branch.
            returning xmax = 0 as inserted
          )
          select count(*) filter (where inserted)::int as inserted from written
        `.execute(trx);
        inserted += counts[0]?.inserted ?? 0;
      }
      return { inserted, updated: rows.length - inserted };
    });
  }

  /**
   * The last `lookback` bars at or before `until` (default: the newest) of each symbol, ascending by
   * time. Symbols with no bars are absent from the map. One statement: a lateral backward scan of the
   * primary key per symbol.
   *
   * The statement is bounded by time from below as well ({@link fetchFloor}), so that on TimescaleDB
   * the planner excludes every chunk older than the window instead of opening (and locking) all of
   * them; without a lower bound, one fetch over 21 years of bars planned 1,121 chunks
   * (docs/decisions/timescaledb-chunks.md). The bound never changes the answer: a symbol that finds
   * all `lookback` bars inside it has its newest `lookback` bars (every bar left out is older than
   * each one found), and the few that find fewer (a gap in the data, the start of a series) are read
   * again without it, in a second statement.
   */
  async fetchBars(symbols: readonly string[], options: FetchBarsOptions): Promise<Map<string, Bar[]>> {
    const { lookback, until } = options;
    if (!Number.isInteger(lookback) || lookback < 1) {
      throw new RangeError(`fetchBars needs lookback to be a positive integer (bars per symbol); got ${String(lookback)}`);
    }
    const unique = [...new Set(symbols)];
    if (unique.length === 0) return new Map();
    const floor = this.fetchFloor(unique, lookback, until);
    let result = await this.fetchWindow(unique, lookback, until, floor);
    const short = floor === undefined ? [] : unique.filter((symbol) => (result.get(symbol)?.length ?? 0) < lookback);
    if (short.length > 0) {
      const refetched = await this.fetchWindow(short, lookback, until, undefined);
      // Keyed in symbol order, as one statement would have returned them.
      result = new Map([...result, ...refetched].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    for (const [symbol, list] of result) {
      const newest = list.at(-1)!.time.getTime();
      if (newest > (this.#newestSeen.get(symbol) ?? -Infinity)) this.#newestSeen.set(symbol, newest);
    }
    return result;
  }

  /**
   * The lower time bound of a fetch: `until` (or, without one, the oldest of the symbols' newest bars
   * seen so far) less the calendar time `lookback` daily bars take — five trading days a week, plus
   * two weeks for holidays. A symbol never seen (new, or unknown: a batch may carry a client's typo)
   * does not hold the others back; if it has too few bars in the window it is read again without the
   * bound. Undefined (no bound) when no symbol has been seen, or for a window of over a century (a
   * training run's whole history).
   */
  private fetchFloor(symbols: readonly string[], lookback: number, until: Date | undefined): Date | undefined {
    const spanDays = Math.ceil((lookback * 7) / 5) + 14;
    if (spanDays > 36_500) return undefined;
    let anchor = until?.getTime();
    if (anchor === undefined) {
      const seen = symbols.map((symbol) => this.#newestSeen.get(symbol)).filter((time) => time !== undefined);
      if (seen.length === 0) return undefined;
      anchor = Math.min(...seen);
    }
    return new Date(anchor - spanDays * DAY_MS);
  }

  private async fetchWindow(
    symbols: readonly string[],
    lookback: number,
    until: Date | undefined,
    floor: Date | undefined,
  ): Promise<Map<string, Bar[]>> {
    const upTo = until === undefined ? sql`` : sql`and b.time <= ${until}`;
    const after = floor === undefined ? sql`` : sql`and b.time > ${floor}`;
    // The outer ORDER BY makes the ascending order a guarantee rather than an accident of the plan.
    const { rows } = await sql<BarRow>`
      select b.symbol, b.time, b.open, b.high, b.low, b.close, b.adj_close, b.volume, b.source, b.quality
      from unnest(${symbols}::text[]) as s(symbol)
      cross join lateral (
        select * from market_bars b
        where b.symbol = s.symbol ${upTo} ${after}
        order by b.time desc
        limit ${lookback}
      ) b
      order by b.symbol, b.time
    `.execute(this.db);
    const result = new Map<string, Bar[]>();
    for (const row of rows) {
      const bar = toBar(row);
      const list = result.get(bar.symbol);
      if (list) list.push(bar);
      else result.set(bar.symbol, [bar]);
    }
    return result;
  }

  /**
   * Every stored symbol, sorted. A recursive "loose index scan": one primary-key probe per distinct
   * symbol instead of reading every bar, which `select distinct` would do.
   */
  async listSymbols(): Promise<string[]> {
    const { rows } = await sql<{ symbol: string }>`
      with recursive s(symbol) as (
        select min(symbol) from market_bars
        union all
        select (select min(symbol) from market_bars where symbol > s.symbol) from s where s.symbol is not null
      )
      select symbol from s where symbol is not null order by symbol
    `.execute(this.db);
    return rows.map((r) => r.symbol);
  }

  /** How many bars are stored, over all symbols. */
  async countBars(): Promise<number> {
    const row = await this.db
      .selectFrom('market_bars')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    // count(*) is int8: a number on both engines (see database.ts), but make the type honest anyway.
    return Number(row.n);
  }

  /**
   * The stored bars at the earliest time after `after`, over `symbols`: the next "moment" of the
   * market, as a replay steps through it. Empty when nothing is stored after `after`. One statement:
   * one primary-key probe per symbol (the first bar after `after`), then those at the earliest time.
   */
  async nextBars(symbols: readonly string[], after: Date): Promise<Bar[]> {
    const unique = [...new Set(symbols)];
    if (unique.length === 0) return [];
    const { rows } = await sql<BarRow>`
      with next as (
        select b.* from unnest(${unique}::text[]) as s(symbol)
        cross join lateral (
          select * from market_bars b where b.symbol = s.symbol and b.time > ${after} order by b.time limit 1
        ) b
      )
      select symbol, time, open, high, low, close, adj_close, volume, source, quality
      from next where time = (select min(time) from next)
      order by symbol
    `.execute(this.db);
    return rows.map(toBar);
  }

  /** The newest bar time of each symbol; symbols with no bars are absent. */
  async latestTimes(symbols: readonly string[]): Promise<Map<string, Date>> {
    const unique = [...new Set(symbols)];
    if (unique.length === 0) return new Map();
    const { rows } = await sql<{ symbol: string; time: Date }>`
      select s.symbol, latest.time
      from unnest(${unique}::text[]) as s(symbol)
      cross join lateral (select max(b.time) as time from market_bars b where b.symbol = s.symbol) latest
      where latest.time is not null
    `.execute(this.db);
    return new Map(rows.map((r) => [r.symbol, r.time]));
  }

  /**
   * Stored bars with at least one data-quality flag, oldest first within each symbol, filtered by
   * symbol, flag and date range (each optional), up to `limit` rows after the keyset `after`.
   */
  async listFlagged(filter: FlaggedFilter = {}, limit = 1_000, after?: { symbol: string; time: Date }): Promise<Bar[]> {
    const { rows } = await sql<BarRow>`
      select symbol, time, open, high, low, close, adj_close, volume, source, quality
      from market_bars
      where quality <> '{}'
        ${filter.symbols?.length ? sql`and symbol = any(${[...filter.symbols]}::text[])` : sql``}
        ${filter.reasons?.length ? sql`and quality && ${[...filter.reasons]}::text[]` : sql``}
        ${filter.from ? sql`and time >= ${filter.from}` : sql``}
        ${filter.to ? sql`and time <= ${filter.to}` : sql``}
        ${after ? sql`and (symbol, time) > (${after.symbol}, ${after.time}::timestamptz)` : sql``}
      order by symbol, time
      limit ${limit}
    `.execute(this.db);
    return rows.map(toBar);
  }

  /** Stored bars per data-quality flag (a bar with two flags counts under both); flags with none are absent. */
  async countFlagged(): Promise<Map<string, number>> {
    const { rows } = await sql<{ reason: string; n: number }>`
      select reason, count(*)::int as n from market_bars, unnest(quality) as reason
      where quality <> '{}' group by reason order by reason
    `.execute(this.db);
    return new Map(rows.map((r) => [r.reason, Number(r.n)]));
  }
}

/** Which flagged bars {@link BarsRepository.listFlagged} returns; every field narrows, none is required. */
export interface FlaggedFilter {
  readonly symbols?: readonly string[];
  readonly reasons?: readonly string[];
  readonly from?: Date;
  readonly to?: Date;
}

function lastPerKey(bars: readonly Bar[]): Bar[] {
  const byKey = new Map<string, Bar>();
  for (const bar of bars) byKey.set(`${bar.symbol}\u0000${bar.time.getTime()}`, bar);
  return [...byKey.values()];
}

/**
 * Bar times as epoch milliseconds: pg formats each Date parameter as a local-time string, which for a
 * 20,000-element array cost more than the numbers do. to_timestamp(ms / 1000) is exact to the
 * microsecond, finer than any bar time.
 */
function epochMs(rows: readonly BarRow[]): number[] {
  return rows.map((row) => row.time.getTime());
}

function toRow(bar: Bar): BarRow {
  return {
    symbol: bar.symbol,
    time: bar.time,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    adj_close: bar.adjClose,
    volume: bar.volume,
    source: bar.source,
    // Flags travel comma-joined through unnest (a text[][] would not: unnest flattens it), and no flag name has a comma.
    quality: bar.quality ? [...bar.quality] : valueFlags(bar),
  };
}

function toBar(row: BarRow): Bar {
  return {
    symbol: row.symbol,
    time: row.time,
    open: row.open,
    high: row.high,
    low: row.low,
    close: row.close,
    adjClose: row.adj_close,
    volume: row.volume,
    source: row.source,
    // A flag this build does not know (written by a newer one) is not served: clients know the enum of this one.
    quality: row.quality.filter(isQualityReason),
  };
}
