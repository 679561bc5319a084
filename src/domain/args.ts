import { ArrayMaxSize, ArrayMinSize, IsOptional, Matches } from 'class-validator';
import { ArgsType, Field } from 'type-graphql';
import {
  MARKET_SOURCE_PATTERN,
  marketSourceMessage,
  QUERIED_VERSION_PATTERN,
  queriedVersionMessage,
  STRATEGY_PATTERN,
  strategyMessage,
  SYMBOL_PATTERN,
  symbolMessage,
} from './names.js';

/**
 * The arguments that name what a query is about (a strategy, a symbol, symbols, a version), declared
 * and validated once here; the modules' args classes extend {@link StrategyArgs} or {@link SymbolArgs}
 * or use these fields. The one file of this layer that uses type-graphql: its decorators only
 * declare; nothing here runs GraphQL (docs/decisions/domain-layer.md).
 *
 * Each field is one decorator so a class can still say what the argument means in its query (the
 * schema's descriptions differ) without restating the rule: class-validator keeps only one validator
 * of a kind per property when a subclass redeclares it, so redeclaring an inherited field to change
 * its description would silently drop the parent's checks.
 */

/** Decorators applied as if stacked in this order above a property (the last one first). */
function stacked(...decorators: PropertyDecorator[]): PropertyDecorator {
  return (target, key) => {
    for (let i = decorators.length - 1; i >= 0; i--) decorators[i]!(target, key);
  };
}

/** A required `String!` checked by `rule`; with `optional`, a nullable `String` that may be left out. */
function nameField(rule: PropertyDecorator, description: string, optional = false): PropertyDecorator {
  return optional
    ? stacked(
        Field(() => String, { nullable: true, description }),
        IsOptional(),
        rule,
      )
    : stacked(
        Field(() => String, { description }),
        rule,
      );
}

/** `strategy: String!`, or with `optional` `strategy: String` that defaults to `direction-1d`. */
export function StrategyField(options: { optional?: boolean } = {}): PropertyDecorator {
  const rule = Matches(STRATEGY_PATTERN, { message: strategyMessage });
  return options.optional
    ? nameField(rule, 'Defaults to `direction-1d`', true)
    : nameField(rule, 'The strategy, e.g. `direction-1d` (`strategies` lists them)');
}

/** `symbol: String!`, or with `description` an optional `symbol: String`. */
export function SymbolField(options: { description?: string } = {}): PropertyDecorator {
  const rule = Matches(SYMBOL_PATTERN, { message: `symbol ${symbolMessage}` });
  return options.description === undefined
    ? nameField(rule, 'The ticker, e.g. `AAPL` (`symbols` lists them)')
    : nameField(rule, options.description, true);
}

/**
 * `symbols: [String!]!`. At most 5,000 here, before anything is looked up; the configured limit
 * (MAX_SYMBOLS_PER_REQUEST) needs configuration, so services check that.
 */
export function SymbolsField(options: { description: string; per: 'request' | 'subscription'; atLeastOne?: boolean }): PropertyDecorator {
  return stacked(
    Field(() => [String], { description: options.description }),
    ...(options.atLeastOne ? [ArrayMinSize(1, { message: 'symbols: name at least one symbol' })] : []),
    ArrayMaxSize(5_000, { message: `symbols: at most 5000 per ${options.per}` }),
    Matches(SYMBOL_PATTERN, { each: true, message: `each of symbols ${symbolMessage}` }),
  );
}

/** An optional `version: String` of a history or metrics query. */
export function QueriedVersionField(description: string): PropertyDecorator {
  return nameField(Matches(QUERIED_VERSION_PATTERN, { message: queriedVersionMessage }), description, true);
}

/**
 * An optional `source: String` of a history, metrics or explanation read: the market whose recorded
 * predictions to read (`stored`, `synthetic`, `unknown`); left out, the market this gateway serves.
 */
export function MarketSourceField(): PropertyDecorator {
  return nameField(
    Matches(MARKET_SOURCE_PATTERN, { message: marketSourceMessage }),
    'The market whose recorded predictions to read: "stored" (imported or vendor bars), "synthetic", or "unknown" (recorded before markets were recorded). Defaults to the market this gateway serves',
    true,
  );
}

/** `strategy: String!`: the arguments of everything about one strategy. */
@ArgsType()
export class StrategyArgs {
  @StrategyField()
  strategy!: string;
}

/** `symbol: String!, strategy: String`: the arguments of everything about one symbol's predictions. */
@ArgsType()
export class SymbolArgs {
  @SymbolField()
  symbol!: string;

  @StrategyField({ optional: true })
  strategy?: string;
}
