import { SIGNALS, type Signal } from '../../domain/signal.js';
import type { PredictionHistoryTable } from '../../infra/db/tables.js';
import type { PredictionRecord } from '../predictions/index.js';

/**
 * The one definition of a history row: each field, the `prediction_history` column it fills and the
 * PostgreSQL type its values travel as in the repository's bulk insert. The row's type, the writer's
 * copy, the spill files' JSON and the insert's column list are all derived from it; the column types
 * come from `PredictionHistoryTable` in infra/db/tables.ts.
 */
export const HISTORY_COLUMNS = {
  /** The prediction's asOf: the time of the last bar it saw. Travels as epoch milliseconds. */
  time: { column: 'time', sqlType: 'float8' },
  symbol: { column: 'symbol', sqlType: 'text' },
  strategy: { column: 'strategy', sqlType: 'text' },
  modelVersion: { column: 'model_version', sqlType: 'text' },
  horizon: { column: 'horizon', sqlType: 'text' },
  probability: { column: 'probability', sqlType: 'float8' },
  confidence: { column: 'confidence', sqlType: 'float8' },
  signal: { column: 'signal', sqlType: 'text' },
  expectedReturn: { column: 'expected_return', sqlType: 'float8' },
  intervalLevel: { column: 'interval_level', sqlType: 'float8' },
  intervalLow: { column: 'interval_low', sqlType: 'float8' },
  intervalHigh: { column: 'interval_high', sqlType: 'float8' },
  featuresHash: { column: 'features_hash', sqlType: 'text' },
  /** The market the prediction was made from (`stored`, `synthetic`); part of the key. */
  marketSource: { column: 'market_source', sqlType: 'text' },
} as const satisfies Record<string, { column: keyof PredictionHistoryTable; sqlType: 'text' | 'float8' }>;

export type HistoryField = keyof typeof HISTORY_COLUMNS;

/** The fields in column order. */
export const HISTORY_FIELDS = Object.keys(HISTORY_COLUMNS) as readonly HistoryField[];

/**
 * One served prediction as history records it. Its key is (symbol, strategy, modelVersion,
 * marketSource, time): a prediction is a pure function of the model version and the market's bars up
 * to its time, so two rows with the same key carry the same facts and the table keeps the first one.
 */
export type HistoryRow = { readonly [F in HistoryField]: PredictionHistoryTable[(typeof HISTORY_COLUMNS)[F]['column']] };

/**
 * A row holding exactly the fields of `source` that HISTORY_COLUMNS names, with `time` as given: the
 * writer's copy (so later changes by the caller cannot alter what is written) and a spill line read back.
 * Unchecked: validate the result with historyRowProblem where the source is not trusted. A literal, not
 * a loop over HISTORY_FIELDS, as every served prediction is copied here (docs/decisions/history-write-path.md);
 * `satisfies` makes a column added to HISTORY_COLUMNS and missing here fail the type check.
 */
export function pickHistoryRow(source: Readonly<Record<HistoryField, unknown>>, time: Date): HistoryRow {
  const row = {
    time,
    symbol: source.symbol,
    strategy: source.strategy,
    modelVersion: source.modelVersion,
    horizon: source.horizon,
    probability: source.probability,
    confidence: source.confidence,
    signal: source.signal,
    expectedReturn: source.expectedReturn,
    intervalLevel: source.intervalLevel,
    intervalLow: source.intervalLow,
    intervalHigh: source.intervalHigh,
    featuresHash: source.featuresHash,
    marketSource: source.marketSource,
  } satisfies Record<HistoryField, unknown>;
  return row as HistoryRow;
}

/**
 * Where the writer puts rows: `HistoryRepository` in production, a stand-in in the writer's unit tests.
 * `insertMany` must be idempotent per key (inserting a stored key is a no-op, not an error) and
 * resolve with how many rows were actually new; the writer's retries rely on both.
 */
export interface HistorySink {
  insertMany(rows: readonly HistoryRow[]): Promise<number>;
}

/**
 * The row a served prediction becomes. `interval` is the price interval at the level the history
 * records (the resolver's default, 0.95, unless the caller decides otherwise); `marketSource` the
 * market the prediction service predicts from (STORED_MARKET or SYNTHETIC_MARKET).
 *
 * ```ts
 * writer.record([toHistoryRow(record, priceInterval(record, 0.95), STORED_MARKET)]);
 * ```
 */
export function toHistoryRow(
  record: PredictionRecord,
  interval: { level: number; low: number; high: number },
  marketSource: string,
): HistoryRow {
  return {
    time: record.asOf,
    symbol: record.symbol,
    strategy: record.strategy,
    modelVersion: record.model.manifest.version,
    horizon: record.horizon,
    probability: record.probability,
    confidence: record.confidence,
    signal: record.signal,
    expectedReturn: record.expectedReturn,
    intervalLevel: interval.level,
    intervalLow: interval.low,
    intervalHigh: interval.high,
    featuresHash: record.featuresHash,
    marketSource,
  };
}

/** The unique key of a row, as one string (NUL cannot occur in PostgreSQL text, so it cannot collide). */
export function historyKey(row: HistoryRow): string {
  return `${row.symbol}\u0000${row.strategy}\u0000${row.modelVersion}\u0000${row.marketSource}\u0000${row.time.getTime()}`;
}

const KNOWN_SIGNALS: ReadonlySet<string> = new Set<string>(SIGNALS);

// infra/db/tables.ts, below the domain, spells the column's type itself; this holds it to Signal both ways.
type SignalColumn = PredictionHistoryTable['signal'];
const SIGNAL_COLUMN_IS_SIGNAL: [Signal, SignalColumn] extends [SignalColumn, Signal] ? true : never = true;
void SIGNAL_COLUMN_IS_SIGNAL;

/**
 * Why the table would refuse `row`, or undefined if it would accept it. Mirrors the NOT NULLs and
 * CHECKs of db/migrations/0003_prediction_history.ts (and 0009's market_source): the writer refuses such rows up front, because
 * one of them inside a batch would make the database refuse the whole batch on every retry.
 */
export function historyRowProblem(row: HistoryRow): string | undefined {
  if (typeof row !== 'object' || row === null) return 'not an object';
  if (!(row.time instanceof Date) || !Number.isFinite(row.time.getTime())) return 'time must be a valid Date';
  for (const field of ['symbol', 'strategy', 'modelVersion', 'horizon', 'featuresHash', 'marketSource'] as const) {
    // NUL is the one character PostgreSQL text cannot hold (and historyKey's separator).
    if (typeof row[field] !== 'string' || row[field].includes('\u0000')) return `${field} must be a string without NUL characters`;
  }
  if (row.marketSource.length === 0 || row.marketSource.length > 64) return 'marketSource must be 1-64 characters';
  if (!isUnit(row.probability)) return `probability must be within [0, 1], got ${String(row.probability)}`;
  if (!isUnit(row.confidence)) return `confidence must be within [0, 1], got ${String(row.confidence)}`;
  if (!KNOWN_SIGNALS.has(row.signal)) return `signal must be BUY, SELL or HOLD, got ${String(row.signal)}`;
  if (row.expectedReturn !== null && !isFiniteNumber(row.expectedReturn)) {
    return `expectedReturn must be null or a finite number, got ${String(row.expectedReturn)}`;
  }
  if (!(isFiniteNumber(row.intervalLevel) && row.intervalLevel > 0 && row.intervalLevel < 1)) {
    return `intervalLevel must be within (0, 1), got ${String(row.intervalLevel)}`;
  }
  if (!(isFiniteNumber(row.intervalLow) && isFiniteNumber(row.intervalHigh) && row.intervalLow <= row.intervalHigh)) {
    return `interval must be finite with low <= high, got [${String(row.intervalLow)}, ${String(row.intervalHigh)}]`;
  }
  return undefined;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isUnit(value: unknown): boolean {
  return isFiniteNumber(value) && value >= 0 && value <= 1;
}
