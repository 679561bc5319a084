import { DateTimeISOResolver } from 'graphql-scalars';
import { Field, Float, ID, ObjectType, registerEnumType } from 'type-graphql';
import { SIGNALS, type Signal } from '../../domain/signal.js';
import { QUALITY_REASONS, type QualityReason } from '../../infra/market-data/bar-quality.js';
import { type ModelVersion } from '../models/index.js';
import type { VersionChoice } from './prediction.record.js';

/** The domain's signals as the enum object type-graphql registers (each value its own name). */
export const SignalEnum = Object.fromEntries(SIGNALS.map((signal) => [signal, signal])) as { readonly [S in Signal]: S };
registerEnumType(SignalEnum, { name: 'Signal', description: 'What the prediction suggests doing; HOLD inside the model’s thresholds.' });

/** The data-quality flags as a GraphQL enum: `FLAT_PRICE` in the API is `flat_price` in the code and the database. */
export const BarQualityEnum = Object.fromEntries(QUALITY_REASONS.map((reason) => [reason.toUpperCase(), reason])) as {
  readonly [R in QualityReason as Uppercase<R>]: R;
};
registerEnumType(BarQualityEnum, {
  name: 'BarQuality',
  description: 'Why a bar is suspect but kept (docs/decisions/data-quality.md says which flags leave a bar out of outcomes and training).',
  valuesConfig: {
    FLAT_PRICE: { description: 'open = high = low = close while shares traded: a stale vendor bar' },
    ZERO_VOLUME: { description: 'no shares traded on a session' },
    OFF_CALENDAR: { description: 'dated on a day the NYSE was closed' },
    SESSION_GAP: { description: 'NYSE sessions are missing before this bar' },
    LARGE_MOVE: { description: 'the adjusted close moved beyond N× the recent volatility, with no corporate action to explain it' },
  },
});

// simpleResolvers (Quote, PriceInterval, Prediction): a `predictions` answer holds up to hundreds of each,
// with plain properties; without it type-graphql wraps every field in a resolver of its own (for
// middlewares and field auth, which these fields do not use) that graphql-js calls once per field per item.
@ObjectType({ description: 'The last bar the prediction was computed from.', simpleResolvers: true })
export class Quote {
  // Resolved from the bar (predictions.resolver.ts bindSyncPredictionFields): bars carry no id of their own.
  @Field(() => ID, { description: 'Opaque, stable id of this bar (market source, symbol, time) for client caches' })
  id!: string;
  @Field(() => String, { description: 'The ticker, e.g. `AAPL`' }) symbol!: string;
  @Field(() => DateTimeISOResolver, { description: 'Start of the bar (a daily bar is stamped 00:00 UTC of its trading date)' })
  time!: Date;
  @Field(() => Float, { description: 'First traded price of the bar' }) open!: number;
  @Field(() => Float, { description: 'Highest traded price of the bar' }) high!: number;
  @Field(() => Float, { description: 'Lowest traded price of the bar' }) low!: number;
  @Field(() => Float, { description: 'Last traded price of the bar: the price the interval is centred on' }) close!: number;
  @Field(() => Float, { description: 'Shares traded in the bar (0 for a quote rebuilt from history)' }) volume!: number;
  @Field(() => String, { description: '`synthetic` for the built-in simulated market; otherwise where the bar came from' })
  source!: string;
  @Field(() => [BarQualityEnum], {
    nullable: true,
    description: 'Data-quality flags of this bar: empty when it was checked and is clean; null when its market is not checked (synthetic)',
  })
  quality?: readonly QualityReason[];
}

@ObjectType({
  description: 'A price range for the horizon that should contain the outcome with probability `level` (split-conformal).',
  simpleResolvers: true,
})
export class PriceInterval {
  @Field(() => ID, { description: 'Opaque, stable id (strategy, symbol, bar, model version, level) for client caches' })
  id!: string;
  @Field(() => Float, { description: 'Probability the outcome falls in [low, high]: 0.8, 0.9, 0.95 or 0.99' }) level!: number;
  @Field(() => Float, { description: 'Lower end of the price range' }) low!: number;
  @Field(() => Float, { description: 'Upper end of the price range' }) high!: number;
}

const VERSION_CHOICES: readonly VersionChoice[] = ['REQUESTED', 'RECORDED_ACTIVE', 'CURRENT_ACTIVE'];
export const VersionChoiceEnum = Object.fromEntries(VERSION_CHOICES.map((c) => [c, c])) as { readonly [C in VersionChoice]: C };
registerEnumType(VersionChoiceEnum, {
  name: 'VersionChoice',
  description: 'Why a point-in-time prediction used its model version',
  valuesConfig: {
    REQUESTED: { description: 'The `version` argument named it' },
    RECORDED_ACTIVE: { description: 'The serving record (activation log) shows it active at `asOf`' },
    CURRENT_ACTIVE: {
      description: 'Nothing was recorded as active by `asOf` (a date before this deployment first ran): the version active now answered',
    },
  },
});

@ObjectType({ description: 'How a point-in-time prediction (asked with `asOf` or `version`) was answered.', simpleResolvers: true })
export class PointInTime {
  @Field(() => DateTimeISOResolver, { description: 'The instant asked about; `Prediction.asOf` is the last stored bar at or before it' })
  requested!: Date;
  @Field(() => VersionChoiceEnum, {
    description: 'Whether `version` named the model version, the serving record chose it, or the active one answered',
  })
  versionChosenBy!: VersionChoice;
}

@ObjectType({
  description: 'A model’s view of one symbol at one bar. The same bars and model version always give the same prediction.',
  simpleResolvers: true,
})
export class Prediction {
  // id is a field resolver (predictions.resolver.ts): it is derived from the record, not stored in it.
  @Field(() => String, { description: 'The ticker predicted, e.g. `AAPL`' }) symbol!: string;
  @Field(() => String, { description: 'The strategy (`Strategy.name`) that made the prediction, e.g. `direction-1d`' }) strategy!: string;
  @Field(() => String, { description: 'How far ahead the event is, e.g. `1d`' }) horizon!: string;
  @Field(() => DateTimeISOResolver, { description: 'Time of the last bar used' }) asOf!: Date;
  @Field(() => SignalEnum, {
    description: 'BUY when `probability` is above the model’s buy threshold, SELL when below its sell threshold, otherwise HOLD',
  })
  signal!: Signal;
  @Field(() => Float, { description: 'Calibrated probability that the strategy’s event happens' }) probability!: number;
  @Field(() => Float, { description: 'Calibrated probability that the signal is right' }) confidence!: number;
  @Field(() => Float, { nullable: true, description: 'Expected return over the horizon; null while no return model is served' })
  expectedReturn!: number | null;
  @Field(() => Boolean, { description: 'True when served from the last good bars because the market-data provider is failing' })
  stale!: boolean;
  @Field(() => String, { description: 'Fingerprint of the exact feature vector the model saw' }) featuresHash!: string;
  @Field(() => PointInTime, {
    nullable: true,
    description: 'Set when answered as of a past bar or for a named version (never recorded in history); null for live predictions',
  })
  pointInTime?: PointInTime;
  // interval, model and quote are field resolvers (predictions.resolver.ts)
  model?: ModelVersion;
  quote?: Quote;
}
