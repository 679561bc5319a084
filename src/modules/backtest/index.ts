import 'reflect-metadata';
import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { ModelRegistry } from '../models/index.js';
import { BacktestResolver } from './backtest.resolver.js';
import { BacktestService, type BacktestLimits } from './backtest.service.js';

export { BacktestResolver } from './backtest.resolver.js';
export {
  BacktestService,
  DEFAULT_BACKTEST_LIMITS,
  type BacktestLimits,
  type BacktestProgress,
  type BacktestRequest,
  type BacktestResult,
} from './backtest.service.js';
export { BACKTEST_DEFINITIONS, RULES, performance, positionsOf, simulate, type Rule } from './backtest.simulate.js';
export { ESTIMATED_FIGURES, EXCESS_FIGURE, estimateBacktest, type BacktestEstimates, type BacktestFigure } from './backtest.estimates.js';
export { Backtest, BacktestMetrics, BacktestPoint } from './backtest.type.js';

/** The backtest module: its service (also used by `npm run backtest`) and resolver. */
export function createBacktestModule(deps: {
  market: MarketDataProvider;
  registry: ModelRegistry;
  limits?: BacktestLimits;
  replicates?: number;
}): {
  service: BacktestService;
  resolver: BacktestResolver;
} {
  const service = new BacktestService(deps);
  return { service, resolver: new BacktestResolver(service) };
}
