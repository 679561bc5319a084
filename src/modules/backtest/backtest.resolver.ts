import { Args, Authorized, Query, Resolver } from 'type-graphql';
import { Role } from '../access/index.js';
import { unavailable } from '../../shared/errors.js';
import { BacktestArgs } from './backtest.args.js';
import { BACKTEST_DEFINITIONS } from './backtest.simulate.js';
import type { BacktestService } from './backtest.service.js';
import { Backtest } from './backtest.type.js';

@Resolver(() => Backtest)
export class BacktestResolver {
  /** Without a service (a schema for tests that run no backtest) `backtest` answers UNAVAILABLE. */
  constructor(private readonly service?: BacktestService) {}

  @Authorized(Role.Analyst)
  @Query(() => Backtest, { description: 'Replays a model version over stored bars (no look-ahead) against an equal-weight benchmark' })
  async backtest(@Args(() => BacktestArgs) args: BacktestArgs): Promise<Backtest> {
    if (!this.service) throw unavailable('backtests are not served by this instance');
    const result = await this.service.run(args);
    return {
      strategy: result.strategyName,
      version: result.version,
      rule: result.rule,
      costBps: result.costBps,
      quantile: result.quantile,
      from: result.from,
      to: result.to,
      symbols: [...result.symbols],
      predictions: result.predictions,
      metrics: { ...result.strategy, estimates: result.estimates.strategy },
      benchmark: { ...result.benchmark, estimates: result.estimates.benchmark },
      curve: result.curve,
      warnings: [...result.warnings],
      estimation: result.estimates.estimation,
      estimatesNote: result.estimates.note,
      definitions: BACKTEST_DEFINITIONS,
    };
  }
}
