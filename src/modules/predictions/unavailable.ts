import type { Logger } from '../../infra/logger/logger.js';
import { codedError, ErrorCode } from '../../shared/errors.js';

/**
 * A dependency failed: the client gets UNAVAILABLE (retry later) with no internals, the log gets the
 * cause, once. `part` is the subject of the client's sentence ("market data", "explanations (…)"),
 * hence its verb.
 */
export function unavailableBecause(part: string, cause: unknown, logger: Logger, verb: 'is' | 'are' = 'is'): Error {
  if (typeof cause === 'object' && cause !== null && !loggedCauses.has(cause)) {
    loggedCauses.add(cause);
    logger.warn({ err: cause, part }, `${part} failed`);
  }
  return codedError(ErrorCode.UNAVAILABLE, `${part} ${verb} unavailable right now; try again shortly`);
}

/** DataLoader hands one batch's error to every key; this keeps it to one log line per failure. */
const loggedCauses = new WeakSet<object>();
