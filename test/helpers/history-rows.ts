import { sql, type Kysely } from 'kysely';
import type { Tables } from '../../src/infra/db/index.js';
import type { HistoryRow } from '../../src/modules/history/index.js';

/**
 * A recorded prediction of `direction-1d` v1 for tests and benches: confidence and signal follow from
 * the probability as a manifest with a 0.45/0.55 signal band would give them; every field can be set.
 */
export function recordedPrediction(
  fields: Pick<HistoryRow, 'time' | 'symbol' | 'probability' | 'featuresHash'> & Partial<HistoryRow>,
): HistoryRow {
  const p = fields.probability;
  return {
    strategy: 'direction-1d',
    modelVersion: 'v1',
    horizon: '1d',
    confidence: Math.max(p, 1 - p),
    signal: p > 0.55 ? 'BUY' : p < 0.45 ? 'SELL' : 'HOLD',
    expectedReturn: null,
    intervalLevel: 0.95,
    intervalLow: 99,
    intervalHigh: 101,
    marketSource: 'stored',
    ...fields,
  };
}

/** How many predictions of `symbol` as of the session `date` (YYYY-MM-DD, midnight UTC) history holds. */
export async function historyRowsAt(db: Kysely<Tables>, symbol: string, date: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from prediction_history where symbol = ${symbol} and time = ${new Date(`${date}T00:00:00Z`)}`.execute(db);
  return Number(rows[0]!.n);
}
