import { Args, Authorized, Query, Resolver } from 'type-graphql';
import { Role } from '../access/index.js';
import { DriftArgs } from './drift.args.js';
import type { DriftService } from './drift.service.js';
import { Drift } from './drift.type.js';

@Resolver()
export class DriftResolver {
  constructor(private readonly service: DriftService) {}

  @Authorized(Role.Analyst)
  @Query(() => Drift, {
    description:
      'How far a model version’s inputs and predicted probabilities over a window of stored bars have moved from its training distribution (PSI, KS, per feature and per month), with realized calibration and coverage in the window. BAD_USER_INPUT past DRIFT_MAX_WINDOW_DAYS or DRIFT_MAX_SYMBOLS.',
  })
  drift(@Args(() => DriftArgs) args: DriftArgs): Promise<Drift> {
    return this.service.drift({ strategy: args.strategy, version: args.version, window: args.window, symbols: args.symbols });
  }
}
