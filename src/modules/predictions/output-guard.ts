import type { Logger } from '../../infra/logger/logger.js';
import { codedError, ErrorCode } from '../../shared/errors.js';
import { FEATURE_NAMES } from '../../domain/features.js';

/**
 * What a prediction must be before it is served or recorded: every number a client can read from it
 * finite, and a probability in [0, 1]. Extreme stored bars (1e-320 then 1e308 overflow a log return to
 * Infinity) or a model that answers NaN would otherwise reach GraphQL's Float serializer, which fails
 * the field as an internal error, after the prediction was already written to history.
 */

/** Why a feature vector cannot be scored, or undefined. */
export function invalidFeatures(values: readonly number[]): string | undefined {
  const bad = values.findIndex((v) => !Number.isFinite(v));
  return bad < 0 ? undefined : `feature ${FEATURE_NAMES[bad] ?? `#${bad}`} is ${String(values[bad])} (the stored bars hold extreme values)`;
}

/** Why a calibrated probability cannot be served, or undefined. */
export function invalidProbability(probability: number): string | undefined {
  return Number.isFinite(probability) && probability >= 0 && probability <= 1
    ? undefined
    : `the model's probability is ${String(probability)}`;
}

/** Why the named numbers cannot be served (the first non-finite one), or undefined. */
export function invalidNumbers(values: Readonly<Record<string, number | null>>): string | undefined {
  for (const [name, value] of Object.entries(values)) if (value !== null && !Number.isFinite(value)) return `${name} is ${String(value)}`;
  return undefined;
}

/**
 * The per-item error: MODEL_OUTPUT_INVALID names the symbol and what was wrong, and is logged at warn
 * (no stack: nothing threw) once per distinct message, so a symbol asked about every second does not
 * flood the log.
 */
export function modelOutputInvalid(what: string, symbol: string, reason: string, logger: Logger): Error {
  const message = `the ${what} for "${symbol}" cannot be served: ${reason}`;
  if (!logged.has(message)) {
    if (logged.size >= LOGGED_LIMIT) logged.clear();
    logged.add(message);
    logger.warn({ symbol, reason }, message);
  }
  return codedError(ErrorCode.MODEL_OUTPUT_INVALID, message, { symbol });
}

const LOGGED_LIMIT = 1_000;
const logged = new Set<string>();
