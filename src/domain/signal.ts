/**
 * What a prediction suggests doing: BUY above the model's upper threshold, SELL below its lower one,
 * HOLD between. The GraphQL enum (predictions/prediction.type.ts) and the history column
 * (infra/db/tables.ts, checked against this by the type-checker wherever a row is written or read)
 * carry the same three values.
 */
export const SIGNALS = ['BUY', 'SELL', 'HOLD'] as const;

export type Signal = (typeof SIGNALS)[number];
