import { priceInterval, type PredictionRecord, type PredictionSink } from '../predictions/index.js';
import type { HistoryWriter } from './history.writer.js';
import { toHistoryRow } from './history.types.js';

/** The interval level history keeps: the contract's default, the one coverage is measured on. */
const RECORDED_INTERVAL_LEVEL = 0.95;

/**
 * Where a served prediction is recorded: every prediction the service serves (queries and the
 * signals monitor alike) and every shadow version's becomes a history row in the writer, which
 * accepts it at once and writes it in the background. Shadow rows carry the shadow's version; every
 * row carries `marketSource`, the market the service predicts from (STORED_MARKET or SYNTHETIC_MARKET).
 *
 * The prediction service serves the same record object again while its bars stay cached (every warm
 * request for the symbol): a record the writer has already taken (accepted, or dropped as a repeat of
 * a row it accepted) is not turned into a row and offered again, which would only be dropped as a
 * repeat. One the writer refused (closed, memory full) is offered again when next served.
 */
export function historyOfPredictions(writer: Pick<HistoryWriter, 'record'>, marketSource: string): PredictionSink {
  const taken = new WeakSet<PredictionRecord>();
  const record: PredictionSink['served'] = (records) => {
    const fresh = records.filter((r) => !taken.has(r));
    if (fresh.length === 0) return;
    const result = writer.record(fresh.map((r) => toHistoryRow(r, priceInterval(r, RECORDED_INTERVAL_LEVEL), marketSource)));
    if (result.refused === 0) for (const r of fresh) taken.add(r);
  };
  return { served: record, shadow: record };
}
