import { priceInterval, type PredictionSink } from '../predictions/index.js';
import type { HistoryWriter } from './history.writer.js';
import { toHistoryRow } from './history.types.js';

/** The interval level history keeps: the contract's default, the one coverage is measured on. */
const RECORDED_INTERVAL_LEVEL = 0.95;

/**
 * Where a served prediction is recorded: every prediction the service serves (queries and the
 * signals monitor alike) and every shadow version's becomes a history row in the writer, which
 * accepts it at once and writes it in the background. Shadow rows carry the shadow's version.
 */
export function historyOfPredictions(writer: Pick<HistoryWriter, 'record'>): PredictionSink {
  const record: PredictionSink['served'] = (records) =>
    void writer.record(records.map((r) => toHistoryRow(r, priceInterval(r, RECORDED_INTERVAL_LEVEL))));
  return { served: record, shadow: record };
}
