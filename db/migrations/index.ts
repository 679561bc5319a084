import type { Migration } from 'kysely';
import * as m0001 from './0001_audit_log.js';
import * as m0002 from './0002_market_bars.js';
import * as m0003 from './0003_prediction_history.js';
import * as m0004 from './0004_prediction_outcomes.js';
import * as m0005 from './0005_history_rollups.js';
import * as m0006 from './0006_api_keys.js';
import * as m0007 from './0007_model_serving.js';
import * as m0008 from './0008_history_daily_rollup.js';
import * as m0009 from './0009_market_source.js';
import * as m0010 from './0010_bar_quality.js';
import * as m0011 from './0011_retrain_runs.js';
import * as m0012 from './0012_history_aggregates_latest_signal.js';
import * as m0013 from './0013_outcomes_table.js';
import * as m0014 from './0014_chunk_intervals.js';

/**
 * Every migration, in order. Listed here rather than discovered on disk so the set is fixed at build
 * time (no filesystem scan at start-up, no stray file applied by accident). Add new ones at the end;
 * never edit or reorder an applied one.
 */
export const migrations: Record<string, Migration> = {
  '0001_audit_log': m0001,
  '0002_market_bars': m0002,
  '0003_prediction_history': m0003,
  '0004_prediction_outcomes': m0004,
  '0005_history_rollups': m0005,
  '0006_api_keys': m0006,
  '0007_model_serving': m0007,
  '0008_history_daily_rollup': m0008,
  '0009_market_source': m0009,
  '0010_bar_quality': m0010,
  '0011_retrain_runs': m0011,
  '0012_history_aggregates_latest_signal': m0012,
  '0013_outcomes_table': m0013,
  '0014_chunk_intervals': m0014,
};
