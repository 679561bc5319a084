import { Args, Authorized, Query, Resolver } from 'type-graphql';
import { unavailable } from '../../shared/errors.js';
import { Role } from '../access/index.js';
import { DriftArgs } from './drift.args.js';
import type { DriftService } from './drift.service.js';
import { Drift } from './drift.type.js';

@Resolver()
export class DriftResolver {
  constructor(private readonly service: DriftService | undefined) {}

  @Authorized(Role.Analyst)
  @Query(() => Drift, {
    description:
      'How far a model version’s inputs and predicted probabilities over a window of stored bars have moved from its training ' +
      'distribution (PSI, KS, per feature and per month), with realized calibration and coverage in the window. ' +
      'BAD_USER_INPUT for a window over 400 days or more than 100 symbols.',
  })
  drift(@Args(() => DriftArgs) args: DriftArgs): Promise<Drift> {
    if (!this.service) return Promise.reject(unavailable('drift is not available on this instance'));
    return this.service.drift({ strategy: args.strategy, version: args.version, window: args.window, symbols: args.symbols });
  }
}
