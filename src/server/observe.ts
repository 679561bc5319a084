import type { Logger } from '../infra/logger/logger.js';
import type { Metrics } from '../infra/metrics/metrics.js';

export interface OperationRecord {
  transport: 'http' | 'ws';
  requestId: string;
  operationType: string;
  operationName: string | undefined;
  seconds: number;
  errorCodes: string[];
  /** The caller's role (`anonymous` without credentials); never the credential. */
  role?: string | undefined;
}

/**
 * Where every finished GraphQL operation is counted, whichever transport ran it: the request-duration
 * histogram and error counter of DESIGN.md §5. HTTP requests get their log line from the HTTP layer
 * (which knows the status code); WebSocket operations are logged here.
 */
export interface OperationObserver {
  observe(record: OperationRecord): void;
}

export function createOperationObserver(metrics: Metrics, logger: Logger): OperationObserver {
  return {
    observe(record) {
      metrics.graphqlRequestSeconds.observe({ operation_type: record.operationType }, record.seconds);
      for (const code of record.errorCodes) metrics.graphqlErrorsTotal.inc({ code });
      if (record.transport === 'ws') {
        logger.info(
          {
            reqId: record.requestId,
            transport: 'ws',
            operation: record.operationName,
            operationType: record.operationType,
            role: record.role,
            durationMs: Math.round(record.seconds * 100_000) / 100,
            errorCodes: record.errorCodes.length ? record.errorCodes : undefined,
          },
          'graphql operation',
        );
      }
    },
  };
}
