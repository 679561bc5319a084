import type { GraphQLError } from 'graphql';
import { describeGraphQLError, type Problem } from '../api/errors.js';
import type { WatchRowFragment, WatchlistHistoryQuery, WatchlistQuery } from '../generated/graphql.js';

/** How many confidence points a row's sparkline keeps (recorded history first, then live ones). */
export const SPARK_POINTS = 40;

export interface WatchEntry {
  symbol: string;
  row: WatchRowFragment | null;
  /** Recorded and live confidences, oldest first, one per asOf. */
  points: Array<{ time: string; confidence: number }>;
  problem?: Problem | undefined;
  /** When the last live update arrived (ms), to flash the row. */
  updatedAt?: number | undefined;
}

export type WatchAction =
  | { type: 'loaded'; symbols: readonly string[]; data: WatchlistQuery; errors: readonly GraphQLError[] }
  | { type: 'history'; data: WatchlistHistoryQuery }
  | { type: 'live'; row: WatchRowFragment; at: number };

/**
 * The watchlist's rows: the query's answer, then each live `signals` message that is newer than what
 * the row shows (a resumed subscription may replay what was already seen; those are ignored).
 */
export function watchReducer(state: readonly WatchEntry[], action: WatchAction): WatchEntry[] {
  if (action.type === 'loaded') {
    return action.symbols.map((symbol, index) => {
      const row = action.data.predictions[index] ?? null;
      const error = action.errors.find((e) => e.path?.[0] === 'predictions' && e.path[1] === index);
      return { symbol, row, points: row ? appendPoint([], row) : [], problem: error ? describeGraphQLError(error) : undefined };
    });
  }
  if (action.type === 'history') {
    const recorded = new Map(action.data.predictions.flatMap((p) => (p ? [[p.symbol, p.history] as const] : [])));
    return state.map((entry) => {
      const history = recorded.get(entry.symbol);
      return history ? { ...entry, points: mergePoints(history, entry.points) } : entry;
    });
  }
  const { row, at } = action;
  let changed = false;
  const next = state.map((entry) => {
    if (entry.symbol !== row.symbol || (entry.row && Date.parse(row.asOf) <= Date.parse(entry.row.asOf))) return entry;
    changed = true;
    return { ...entry, row, points: appendPoint(entry.points, row), problem: undefined, updatedAt: at };
  });
  return changed ? next : (state as WatchEntry[]);
}

/** The oldest "latest asOf" over the rows: resuming from it misses nothing for any row. */
export function resumePoint(entries: readonly WatchEntry[]): string | undefined {
  let oldest: string | undefined;
  for (const { row } of entries) {
    if (row && (oldest === undefined || Date.parse(row.asOf) < Date.parse(oldest))) oldest = row.asOf;
  }
  return oldest;
}

function appendPoint(points: Array<{ time: string; confidence: number }>, row: WatchRowFragment) {
  const last = points[points.length - 1];
  const time = Date.parse(row.asOf);
  const next = last && Date.parse(last.time) >= time ? points : [...points, { time: row.asOf, confidence: row.confidence }];
  return next.slice(-SPARK_POINTS);
}

/** Recorded and already-shown points together, one per time, oldest first. */
function mergePoints(a: ReadonlyArray<{ time: string; confidence: number }>, b: ReadonlyArray<{ time: string; confidence: number }>) {
  const byTime = new Map<number, { time: string; confidence: number }>();
  for (const { time, confidence } of [...a, ...b]) byTime.set(Date.parse(time), { time, confidence });
  return [...byTime.entries()]
    .sort(([x], [y]) => x - y)
    .map(([, p]) => p)
    .slice(-SPARK_POINTS);
}
