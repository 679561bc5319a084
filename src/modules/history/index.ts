import 'reflect-metadata';
export { HistoryRepository } from './history.repository.js';
export {
  HistoryWriter,
  isRowError,
  retryDelay,
  type HistoryWriterOptions,
  type HistoryWriterState,
  type RecordResult,
} from './history.writer.js';
export { historyKey, historyRowProblem, toHistoryRow, type HistoryRow, type HistorySink } from './history.types.js';
export { OutcomesRepository, type Outcome, type PendingOutcome } from './outcomes.repository.js';
export {
  OutcomesService,
  outcomeOf,
  type ResolveOptions,
  type ResolveProgress,
  type ResolveReport,
  type OutcomesServiceOptions,
} from './outcomes.service.js';
export {
  HistoryReadRepository,
  historyRollupsOf,
  type ConfidencePointRow,
  type ConfidenceTrendRow,
  type HistoryRollups,
  type LastPointsKey,
} from './history-read.repository.js';
export { HistoryQueryService, MAX_BUCKETS, knownStrategy, type HistoryLoaders } from './history-query.service.js';
export { HistoryResolver, PredictionHistoryResolver, bindPredictionHistoryField } from './history.resolver.js';
export { ConfidencePoint, ConfidenceTrend } from './history.type.js';
export { parseSpan, autoBucket, AUTO_BUCKETS, SpanError, type Span } from './bucket.js';
export { applyHistoryRetention } from './history-retention.js';
export { applyHistoryChunkInterval, historyChunkDays } from './history-chunks.js';
export { historyOfPredictions } from './prediction-sink.js';
export { createHistoryModule, type HistoryModule, type HistoryModuleDeps } from './history.module.js';
