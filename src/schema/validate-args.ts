import { LRUCache } from 'lru-cache';
import { validateSync, type ValidationError, type ValidatorOptions } from 'class-validator';
import { ArgumentValidationError, type ValidatorFn } from 'type-graphql';

/**
 * Argument validation with class-validator, as type-graphql's built-in does it (same options, same
 * error), minus its cost: type-graphql 2.0.0-rc.4 runs `await import("class-validator")` for every
 * validated argument, and under `node --import tsx` each dynamic import is a round trip to Node's
 * module-loader thread, and a 50-symbol query validates 51 arguments (one `interval(level:)` per result).
 * The import is static and the check synchronous: our rules (patterns, sizes, enums) need no async
 * validators. What each choice here saved: docs/decisions/hot-path-measurements.md.
 *
 * Values already found valid are remembered per class (bounded LRU): class-validator walks its
 * metadata store for every instance (on the warm `predictions` path the same
 * `interval(level: 0.95)` is validated 50 times per request and the same symbol list on every
 * request). Our rules are pure functions of the values, so equal values give the same verdict;
 * failures are not remembered (they are rare and their errors are rebuilt each time).
 */
const OPTIONS: ValidatorOptions = { skipMissingProperties: true, forbidUnknownValues: false };

/** Per args class: the JSON of values that passed. Strings longer than this are not remembered. */
const MAX_KEY_LENGTH = 4_096;
/** Keyed by the args class (an item's constructor). */
const valid = new WeakMap<object, LRUCache<string, true>>();

function knownValid(item: object): { hit: boolean; remember(): void } {
  const type = item.constructor;
  let seen = valid.get(type);
  if (!seen) valid.set(type, (seen = new LRUCache<string, true>({ max: 1_000 })));
  const key = JSON.stringify(item);
  if (key === undefined || key.length > MAX_KEY_LENGTH) return { hit: false, remember: () => undefined };
  const cache = seen;
  return { hit: cache.get(key) === true, remember: () => void cache.set(key, true) };
}

/** Validates `item` (an args/input class instance); returns class-validator's errors, none when valid. */
export function validateItem(item: object): ValidationError[] {
  const memo = knownValid(item);
  if (memo.hit) return [];
  const errors = validateSync(item, OPTIONS);
  if (errors.length === 0) memo.remember();
  return errors;
}

export const validateArgs: ValidatorFn = (argValue: unknown) => {
  if (argValue === null || typeof argValue !== 'object') return;
  const items = Array.isArray(argValue) ? argValue : [argValue];
  const errors: ValidationError[] = [];
  for (const item of items) if (item !== null && typeof item === 'object') errors.push(...validateItem(item));
  if (errors.length > 0) throw new ArgumentValidationError(errors);
};
