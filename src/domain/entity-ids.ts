/**
 * The `id: ID!` of every entity the API serves, so client caches (Apollo Client's InMemoryCache,
 * urql's graphcache, Relay) normalise without configuration: they key an object by `__typename` and
 * `id` (Relay by `id` alone, which is why the type's name is inside the id too).
 *
 * An id is opaque to clients but deterministic: the base64url of the UTF-8 JSON array
 * `[typeName, ...keyParts]`, so the same entity always gets the same id on every instance and every
 * restart, and no two entities of any types share one. The parts per type are in
 * docs/decisions/client-ids.md; clients must not parse ids (the parts may gain members), only
 * compare them.
 */
export type EntityType = 'Prediction' | 'Strategy' | 'ModelVersion' | 'Quote' | 'PriceInterval' | 'PromotionDecision';

export function entityId(type: EntityType, ...parts: ReadonlyArray<string | number | null>): string {
  return Buffer.from(JSON.stringify([type, ...parts]), 'utf8').toString('base64url');
}

/** What an id says: for tests and debugging, never for routing (ids are opaque to clients). */
export function decodeEntityId(id: string): [string, ...Array<string | number | null>] {
  return JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as [string, ...Array<string | number | null>];
}

export const strategyId = (name: string): string => entityId('Strategy', name);

export const modelVersionId = (strategy: string, version: string): string => entityId('ModelVersion', strategy, version);

/** A recorded decision of the promotion policy: its audit log row, which never changes. */
export const promotionDecisionId = (strategy: string, auditId: number): string => entityId('PromotionDecision', strategy, auditId);

/**
 * A live prediction is the entity "what `strategy` predicts for `symbol` now": one id for every bar,
 * so a `signals` event replaces it in every cached query that shows that symbol. A point-in-time one
 * (asked with `asOf` or `version`) is another entity, keyed by what was asked, so it never overwrites
 * the live one nor another question's answer.
 */
export function predictionId(
  strategy: string,
  symbol: string,
  pointInTime?: { readonly askedAsOf: Date | undefined; readonly askedVersion: string | undefined },
): string {
  if (!pointInTime) return entityId('Prediction', strategy, symbol);
  return entityId('Prediction', strategy, symbol, pointInTime.askedAsOf?.toISOString() ?? null, pointInTime.askedVersion ?? null);
}

/** A bar: one per market source, symbol and time (a vendor's correction of the bar updates the same entity). */
export const quoteId = (source: string, symbol: string, time: Date): string => entityId('Quote', source, symbol, time.toISOString());

/**
 * A price interval is a function of the model version, the bar it was computed at and the level, so
 * those are its key: the same interval reached live or point-in-time is one cached object.
 */
export const priceIntervalId = (strategy: string, symbol: string, asOf: Date, version: string, level: number): string =>
  entityId('PriceInterval', strategy, symbol, asOf.toISOString(), version, level);
