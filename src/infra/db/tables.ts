import type { ColumnType, Generated } from 'kysely';

/**
 * Row types of every table, as Kysely sees them. Migrations in db/migrations create these tables; a
 * repository that reads or writes a table is the only code that names it.
 */
export interface Tables {
  audit_log: AuditLogTable;
  api_keys: ApiKeysTable;
  market_bars: MarketBarsTable;
  prediction_history: PredictionHistoryTable;
  prediction_outcomes: PredictionOutcomesTable;
  prediction_outcomes_pending: PredictionOutcomesPendingTable;
  model_serving: ModelServingTable;
  retrain_runs: RetrainRunsTable;
}

export interface AuditLogTable {
  id: Generated<number>;
  time: ColumnType<Date, Date | undefined, never>;
  actor: string;
  action: string;
  subject: string;
  detail: ColumnType<Record<string, unknown>, string, never>;
}

/** One API key; see db/migrations/0006_api_keys.ts. `key_hash` is the hex SHA-256 of the key. */
export interface ApiKeysTable {
  id: string;
  name: string;
  role: 'viewer' | 'analyst' | 'admin';
  key_hash: string;
  prefix: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  created_by: string;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** One stored OHLCV bar; see db/migrations/0002_market_bars.ts for its constraints. */
export interface MarketBarsTable {
  symbol: string;
  time: Date;
  open: number;
  high: number;
  low: number;
  close: number;
  adj_close: number;
  volume: number;
  source: string;
  /** Data-quality flags (db/migrations/0010_bar_quality.ts); empty for a clean bar. */
  quality: ColumnType<string[], string[] | undefined, string[]>;
}

/**
 * One recorded prediction; see db/migrations/0003_prediction_history.ts for its key and constraints.
 * Never updated: its realized outcome, once known, is a row of `prediction_outcomes` with the same key.
 */
export interface PredictionHistoryTable {
  time: Date;
  created_at: ColumnType<Date, Date | undefined, never>;
  symbol: string;
  strategy: string;
  model_version: string;
  horizon: string;
  probability: number;
  confidence: number;
  signal: 'BUY' | 'SELL' | 'HOLD';
  expected_return: number | null;
  interval_level: number;
  interval_low: number;
  interval_high: number;
  features_hash: string;
  /** The market the prediction was made from (`stored`, `synthetic`; `unknown` for rows older than 0009). */
  market_source: string;
}

/** The realized outcome of a prediction_history row, same key; append-only (db/migrations/0013_outcomes_table.ts). */
export interface PredictionOutcomesTable {
  symbol: string;
  strategy: string;
  model_version: string;
  market_source: string;
  time: Date;
  /** Copied from the prediction (never changes there). */
  probability: number;
  confidence: number;
  interval_level: number;
  realized_return: number;
  correct: boolean;
  /** Null only for an outcome migrated from a history row that had none. */
  covered: boolean | null;
  resolved_at: ColumnType<Date, Date | undefined, never>;
}

/** A prediction_history row still waiting for its outcome, with what computing one needs (0013). */
export interface PredictionOutcomesPendingTable {
  symbol: string;
  strategy: string;
  model_version: string;
  market_source: string;
  time: Date;
  probability: number;
  confidence: number;
  interval_level: number;
  interval_low: number;
  interval_high: number;
}

/** The version serving each strategy (and its shadow); see db/migrations/0007_model_serving.ts. */
export interface ModelServingTable {
  strategy: string;
  active_version: string;
  shadow_version: string | null;
  updated_at: ColumnType<Date, Date | undefined, Date | undefined>;
  updated_by: string;
}

/** One claimed scheduled retraining run; see db/migrations/0011_retrain_runs.ts. */
export interface RetrainRunsTable {
  strategy: string;
  /** The schedule's tick the run belongs to (the same on every instance that fired it). */
  scheduled_for: Date;
  /** The instance that claimed it (its random id, logged at start). */
  instance: string;
  status: 'running' | 'succeeded' | 'failed' | 'cancelled';
  started_at: ColumnType<Date, Date | undefined, never>;
  expires_at: Date;
  finished_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** The version trained (set when the run started training, kept whatever its outcome). */
  version: string | null;
  detail: ColumnType<Record<string, unknown>, string | undefined, string>;
}
