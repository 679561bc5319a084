import { SYMBOL_PATTERN } from '../infra/market-data/market-data.js';

/**
 * The names clients, files and the database use for what Sibyl serves: one pattern for each kind of
 * name, and the words a client reads when a name does not match.
 */

/**
 * Tickers such as `AAPL` or `BRK.B`. Declared by the market-data contract, below this layer, because
 * every bar stored or parsed there is checked against it; re-exported so modules need not reach into infra.
 */
export { SYMBOL_PATTERN };
export const symbolMessage = 'must be an upper-case ticker such as AAPL or BRK.B (1-10 of A-Z 0-9 . -, starting with a letter)';

export const STRATEGY_PATTERN = /^[a-z0-9][a-z0-9-]{0,40}$/;
export const strategyMessage = 'strategy must be a lower-case name such as direction-1d';

/**
 * A model version as it exists: the `version` of a manifest and the name of its directory under the
 * strategy in the models directory (so never `.` or `..`, which the registry refuses separately).
 * Activation and shadowing name a version by this rule.
 */
export const VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const versionMessage = 'version must be 1-64 of A-Z a-z 0-9 . _ - (a directory name under the strategy in the models directory)';

/**
 * A model version as history and metrics queries accept it: the narrower rule they have always had
 * (no leading `.`, `_` or `-`). Widening it to {@link VERSION_PATTERN} would change which queries are
 * refused as BAD_USER_INPUT, a change of behaviour to make on purpose, not in passing.
 */
export const QUERIED_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const queriedVersionMessage = 'version must be a name such as v1';

/** A market predictions were recorded from (`stored`, `synthetic`, `unknown`; docs/decisions/market-source.md). */
export const MARKET_SOURCE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
export const marketSourceMessage = 'source must be a market name such as stored or synthetic';
