/**
 * The names of what a cached answer may have read (docs/decisions/response-cache.md has the map from
 * every field to these). An input is a family, alone (`history`) or with a key (`bars:AAPL`,
 * `models:direction-1d`); the key `*` (`bars:*`) stands for the whole family.
 *
 * - An answer that depends on `bars:*` depends on every symbol's bars: a change to any of them
 *   invalidates it.
 * - A change to `bars:*` (or to a bare family name) is a change to every input of the family.
 *
 * ```ts
 * barsOf('AAPL');              // 'bars:AAPL'
 * modelsOf('direction-1d');    // 'models:direction-1d'
 * familyOf('bars:AAPL');       // 'bars'
 * ```
 */
export type InputName = string;

/** Market bars of one symbol, as served (the provider behind the market-data cache tier). */
export const barsOf = (symbol: string): InputName => `bars:${symbol}`;
/** Every symbol's bars, and the list of symbols the market answers for. */
export const ALL_BARS: InputName = 'bars:*';
/** What the model registry holds for one strategy: its versions, manifests, active and shadow version. */
export const modelsOf = (strategy: string): InputName => `models:${strategy}`;
/** Every strategy's models. */
export const ALL_MODELS: InputName = 'models:*';
/** Recorded predictions and their realized outcomes (prediction_history). */
export const HISTORY: InputName = 'history';

/** The family of an input: what comes before the first `:`, or the whole name. */
export function familyOf(input: InputName): string {
  const colon = input.indexOf(':');
  return colon < 0 ? input : input.slice(0, colon);
}

/** Whether the input names a whole family (`bars:*`, or a family with no keys such as `history`). */
export function isWholeFamily(input: InputName): boolean {
  const colon = input.indexOf(':');
  return colon < 0 || input.slice(colon + 1) === '*';
}

/** The `family:*` name standing for the whole family of `input`. */
export const wholeFamilyOf = (input: InputName): InputName => `${familyOf(input)}:*`;

/**
 * A bounded label for metrics: the family, for the three known ones, else `other` (keys such as symbols
 * must never become label values).
 */
export function inputKind(input: InputName): 'bars' | 'models' | 'history' | 'other' {
  const family = familyOf(input);
  return family === 'bars' || family === 'models' || family === 'history' ? family : 'other';
}

/** The symbols whose bars `inputs` name, or `all` when one of them names every symbol's. */
export function symbolsOfBars(inputs: readonly InputName[]): string[] | 'all' {
  const symbols: string[] = [];
  for (const input of inputs) {
    if (familyOf(input) !== 'bars') continue;
    if (isWholeFamily(input)) return 'all';
    symbols.push(input.slice('bars:'.length));
  }
  return symbols;
}
