import { Args, Authorized, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../context/context.js';
import { Role } from '../access/index.js';
import { badUserInput, unavailable } from '../../shared/errors.js';
import { ModelVersion, type ModelsService } from '../models/index.js';
import { IntervalArgs, PredictionArgs, PredictionsArgs } from './predictions.args.js';
import type { PointInTimePredictions } from './predictions.as-of.js';
import { Prediction, PriceInterval, Quote } from './prediction.type.js';
import { priceInterval, type PredictionRecord } from './prediction.record.js';
import type { PredictionService } from './predictions.service.js';
import { DEFAULT_STRATEGY } from '../../domain/strategies.js';
import { predictionId, priceIntervalId, quoteId } from '../../domain/entity-ids.js';
import type { Bar } from '../../infra/market-data/market-data.js';

@Resolver(() => Prediction)
export class PredictionsResolver {
  constructor(
    private readonly service: PredictionService,
    private readonly models: ModelsService,
    private readonly pointInTime?: PointInTimePredictions,
  ) {}

  @Authorized(Role.Viewer)
  @Query(() => Prediction, {
    description: 'The current prediction for one symbol; with `asOf` or `version`, what that version said as of a past bar (not recorded)',
  })
  async prediction(
    @Args(() => PredictionArgs) { symbol, strategy, asOf, version }: PredictionArgs,
    @Ctx() ctx: Context,
  ): Promise<PredictionRecord> {
    const name = strategy ?? DEFAULT_STRATEGY;
    if (asOf !== undefined || version !== undefined) {
      await this.checkPointInTime(name, asOf, version);
      return ctx.loaders.pointInTime.load({ strategy: name, symbol, asOf, version });
    }
    this.service.activeModel(name);
    return ctx.loaders.predictions.prediction.load({ strategy: name, symbol });
  }

  @Authorized(Role.Viewer)
  @Query(() => [Prediction], {
    nullable: 'items',
    description:
      'Predictions for many symbols in one batch; an unknown symbol is null at its index, with an UNKNOWN_SYMBOL error at its path',
  })
  async predictions(
    @Args(() => PredictionsArgs) { symbols, strategy, asOf, version }: PredictionsArgs,
    @Ctx() ctx: Context,
  ): Promise<Array<PredictionRecord | Error>> {
    const limit = this.service.maxSymbolsPerRequest;
    if (symbols.length > limit) throw badUserInput(`symbols: at most ${limit} per request, got ${symbols.length}`, { limit });
    const name = strategy ?? DEFAULT_STRATEGY;
    if (asOf !== undefined || version !== undefined) {
      await this.checkPointInTime(name, asOf, version);
      return ctx.loaders.pointInTime.loadMany(symbols.map((symbol) => ({ strategy: name, symbol, asOf, version })));
    }
    this.service.activeModel(name);
    // An Error in the list becomes null at its index plus an error at its path; the rest still resolve.
    return ctx.loaders.predictions.prediction.loadMany(symbols.map((symbol) => ({ strategy: name, symbol })));
  }

  /** Whole-query mistakes (a future asOf, an unknown strategy or version) fail the field, not each item. */
  private async checkPointInTime(strategy: string, asOf: Date | undefined, version: string | undefined): Promise<void> {
    if (!this.pointInTime) throw unavailable('point-in-time predictions are not served by this instance');
    this.pointInTime.checkAsOf(asOf);
    await this.pointInTime.chooseVersion(strategy, asOf, version);
  }

  @Authorized(Role.Viewer)
  @Query(() => [String], {
    description: 'Every symbol the market data can answer for, sorted (stored bars, or the synthetic universe on a fresh machine)',
  })
  async symbols(): Promise<string[]> {
    return this.service.symbols();
  }

  @FieldResolver(() => ID, {
    description:
      'Opaque, stable id for client caches: the live prediction of a strategy and symbol keeps one id across bars (a `signals` event updates it); ' +
      'a point-in-time one (asked with `asOf` or `version`) has its own, keyed by what was asked',
  })
  id(@Root() prediction: PredictionRecord): string {
    return idOf(prediction);
  }

  @FieldResolver(() => PriceInterval, { description: 'Price range for the horizon at `level` (0.8, 0.9, 0.95 or 0.99)' })
  interval(@Root() prediction: PredictionRecord, @Args(() => IntervalArgs) { level }: IntervalArgs): PriceInterval {
    return intervalOf(prediction, level);
  }

  @FieldResolver(() => ModelVersion, { description: 'The model version that made this prediction' })
  model(@Root() prediction: PredictionRecord): ModelVersion {
    return this.models.view(prediction.model);
  }

  @FieldResolver(() => Quote, { description: 'The last bar the prediction was computed from' })
  quote(@Root() prediction: PredictionRecord): Bar {
    return prediction.quote;
  }
}

/**
 * What the fields of a record derive from it, made once per record: the service serves the same
 * record object to every request while its bars stay cached (predictions.service.ts, #madeFrom), and
 * an id is a JSON array in base64url (domain/entity-ids.ts), an interval a computation; both are pure
 * functions of the (immutable) record. Gone with the record.
 */
const derived = new WeakMap<PredictionRecord, { id?: string; intervals?: Map<number, PriceInterval> }>();
/** Quote ids by bar: the bars a record quotes are shared by every record and request made from them. */
const quoteIds = new WeakMap<Bar, string>();

function derivedOf(prediction: PredictionRecord): { id?: string; intervals?: Map<number, PriceInterval> } {
  let known = derived.get(prediction);
  if (!known) derived.set(prediction, (known = {}));
  return known;
}

const idOf = (prediction: PredictionRecord): string => {
  const known = derivedOf(prediction);
  return (known.id ??= predictionId(prediction.strategy, prediction.symbol, prediction.pointInTime));
};

function intervalOf(prediction: PredictionRecord, level: number): PriceInterval {
  const known = derivedOf(prediction);
  const intervals = (known.intervals ??= new Map());
  let interval = intervals.get(level);
  if (!interval) {
    const { strategy, symbol, asOf, model } = prediction;
    // priceInterval throws for an uncalibrated level: nothing is remembered then.
    interval = { id: priceIntervalId(strategy, symbol, asOf, model.manifest.version, level), ...priceInterval(prediction, level) };
    intervals.set(level, interval);
  }
  return interval;
}

function quoteIdOf(bar: Bar): string {
  let id = quoteIds.get(bar);
  if (id === undefined) quoteIds.set(bar, (id = quoteId(bar.source, bar.symbol, bar.time)));
  return id;
}

/**
 * Makes one field of the built schema run synchronously, validating its arguments with `ArgsClass`:
 * the schema layer's bindSyncField (schema/sync-field.ts), applied to the schema being built.
 */
export type BindSyncField = <Root, Result, Args extends object = Record<string, never>>(
  typeName: string,
  fieldName: string,
  resolve: (root: Root, args: Args) => Result,
  ArgsClass?: new () => Args,
) => void;

/**
 * Makes one @Authorized field resolver of the built schema check its role once per operation and run
 * `resolve` with the record, the validated arguments and the context: the schema layer's
 * bindAuthorizedField (schema/sync-field.ts), applied to the schema being built. `resolverClass` is the
 * class whose method declares the field (and its @Authorized role).
 */
export type BindAuthorizedField = <Root, Result, Args extends object = Record<string, never>, Ctx = never>(
  typeName: string,
  fieldName: string,
  resolverClass: abstract new (...args: never[]) => object,
  resolve: (root: Root, args: Args, context: Ctx) => Result,
  ArgsClass?: new () => Args,
) => void;

/**
 * The fields of every item of a `predictions` list run synchronously and read the record as it is
 * (schema/sync-field.ts says why): the methods above still declare them, with the same validation
 * and results; this replaces only how they run. Without `models` (a schema built without services,
 * whose resolvers never run) `model` is left as declared.
 */
export function bindSyncPredictionFields(bind: BindSyncField, models?: ModelsService): void {
  bind('Prediction', 'id', idOf);
  bind('Prediction', 'interval', (prediction: PredictionRecord, { level }: IntervalArgs) => intervalOf(prediction, level), IntervalArgs);
  bind('Prediction', 'quote', (prediction: PredictionRecord) => prediction.quote);
  // Quote is the bar as the market returned it, which has no id: the id is derived here, for every quote.
  bind('Quote', 'id', quoteIdOf);
  if (models) bind('Prediction', 'model', (prediction: PredictionRecord) => models.view(prediction.model));
}

/**
 * `predictions` and `prediction`, the queries every dashboard sends, run with their role checked and
 * their arguments converted by the schema layer (bindAuthorizedField) rather than through
 * type-graphql's middleware chain and metadata lookups, on every request: the methods above still
 * declare them (description, arguments, role) and still do the work.
 */
export function bindPredictionQueries(bind: BindAuthorizedField, resolver: PredictionsResolver): void {
  bind(
    'Query',
    'predictions',
    PredictionsResolver,
    (_root: unknown, args: PredictionsArgs, ctx: Context) => resolver.predictions(args, ctx),
    PredictionsArgs,
  );
  bind(
    'Query',
    'prediction',
    PredictionsResolver,
    (_root: unknown, args: PredictionArgs, ctx: Context) => resolver.prediction(args, ctx),
    PredictionArgs,
  );
}
