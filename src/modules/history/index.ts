export { HistoryRepository } from './history.repository.js';
export {
  HistoryWriter,
  isRowError,
  retryDelay,
  type HistoryWriterOptions,
  type HistoryWriterState,
  type RecordResult,
} from './history.writer.js';
export { historyKey, historyRowProblem, toHistoryRow, type HistoryRow, type HistorySignal, type HistorySink } from './history.types.js';
