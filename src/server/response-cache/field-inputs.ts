import { DEFAULT_STRATEGY } from '../../domain/strategies.js';
import { ALL_BARS, ALL_MODELS, HISTORY, barsOf, modelsOf, type InputName } from '../../infra/response-cache/inputs.js';

/**
 * What each field reads, as inputs of the response cache (infra/response-cache/inputs.ts): the audit of
 * every resolver, kept as code. docs/decisions/response-cache.md says why each entry is what it is.
 *
 * - Every root field of Query is listed. A root field not listed (one added later) makes any operation
 *   selecting it uncacheable until someone decides here what it reads.
 * - Below the root, only fields with a resolver of their own are listed (type-graphql `@FieldResolver`s
 *   and the fields bound in schema/sync-field.ts; test/unit/server/response-cache-fields.test.ts fails
 *   when one is missing). Every other field is a property of the object its parent's resolver returned,
 *   so what it shows was read by that resolver, which is listed.
 * - Arguments are the coerced ones (variables and defaults applied), as the resolver receives them.
 *
 * `UNCACHEABLE` fields read live state that no event announces: `health` (component probes),
 * `apiKeys` (the key table, changed by CLI and mutations, an admin's view), `Strategy.promotions` (the
 * promotion policy's recorded decisions).
 */
export const UNCACHEABLE = 'uncacheable';

export type FieldInputs = (args: Readonly<Record<string, unknown>>) => readonly InputName[];

const strategyOf = (args: Readonly<Record<string, unknown>>) => (typeof args.strategy === 'string' ? args.strategy : DEFAULT_STRATEGY);
const symbolsOf = (args: Readonly<Record<string, unknown>>): string[] =>
  Array.isArray(args.symbols) ? args.symbols.filter((s): s is string => typeof s === 'string') : [];

export const QUERY_FIELDS: Readonly<Record<string, FieldInputs | typeof UNCACHEABLE>> = {
  // The live prediction: the symbol's bars (through the market cache tier) and the strategy's active model.
  // With asOf/version: stored bars up to asOf, and the version chosen from the registry or the activation log.
  prediction: (args) => [barsOf(String(args.symbol)), modelsOf(strategyOf(args))],
  predictions: (args) => [...symbolsOf(args).map(barsOf), modelsOf(strategyOf(args))],
  // The market's symbol list.
  symbols: () => [ALL_BARS],
  // Registry: versions, manifests (offline metrics), active and shadow of every strategy.
  strategies: () => [ALL_MODELS],
  // Recorded predictions; defaults are relative to the latest recorded one, never to the clock.
  confidenceHistory: () => [HISTORY],
  confidenceTrends: () => [HISTORY],
  // Realized outcomes (history) and the version's manifest (training base rate).
  modelMetrics: (args) => [HISTORY, modelsOf(strategyOf(args))],
  compareModels: (args) => [HISTORY, modelsOf(strategyOf(args))],
  // Stored bars of the symbols (every symbol when none are named), the version, and realized outcomes.
  drift: (args) => [...(args.symbols == null ? [ALL_BARS] : symbolsOf(args).map(barsOf)), modelsOf(strategyOf(args)), HISTORY],
  // Stored bars up to `to` and the version; `to` in the future is refused (an error is never stored).
  backtest: (args) => [...symbolsOf(args).map(barsOf), modelsOf(strategyOf(args))],
  health: UNCACHEABLE,
  apiKeys: UNCACHEABLE,
  // The schema is fixed for the life of the process.
  __schema: () => [],
  __type: () => [],
  __typename: () => [],
};

/** Fields below the root that run a resolver of their own, by `Type.field`. */
export const NESTED_FIELDS: Readonly<Record<string, FieldInputs | typeof UNCACHEABLE>> = {
  // The record the root resolver made: id, interval and quote are computed from it alone.
  'Prediction.id': () => [],
  'Prediction.interval': () => [],
  'Prediction.quote': () => [],
  'Quote.id': () => [],
  // The version's view: `active` and `shadow` are read from the registry when the field runs.
  'Prediction.model': () => [ALL_MODELS],
  // The latest recorded predictions of the symbol.
  'Prediction.history': () => [HISTORY],
  // Shapley attributions (the model and the record) and historical accuracy (realized outcomes, manifest).
  'Prediction.explanation': () => [HISTORY, ALL_MODELS],
  // The promotion policy's decisions (audit log): a hold or an alert is recorded with no event that any
  // instance hears (only the switches go through the model lifecycle), so a cached list could miss one.
  'Strategy.promotions': UNCACHEABLE,
};
