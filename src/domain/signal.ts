/**
 * What a prediction suggests doing: BUY above the model's upper threshold, SELL below its lower one,
 * HOLD between. The GraphQL enum (predictions/prediction.type.ts) and the history column
 * (infra/db/tables.ts, checked against this by the type-checker wherever a row is written or read)
 * carry the same three values.
 */
export const SIGNALS = ['BUY', 'SELL', 'HOLD'] as const;

export type Signal = (typeof SIGNALS)[number];

/** The signal a probability gives under a model's thresholds (its manifest's `signal`). */
export function signalOf(thresholds: { readonly buyAbove: number; readonly sellBelow: number }, probability: number): Signal {
  return probability > thresholds.buyAbove ? 'BUY' : probability < thresholds.sellBelow ? 'SELL' : 'HOLD';
}
