/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** A date-time string at UTC, such as 2007-12-03T10:15:30Z, compliant with the `date-time` format outlined in section 5.6 of the RFC 3339 profile of the ISO 8601 standard for representation of dates and times using the Gregorian calendar.This scalar is serialized to a string in ISO 8601 format and parsed from a string in ISO 8601 format. */
  DateTimeISO: { input: string; output: string; }
};

/** Share of predictions in one probability range that came true. */
export type CalibrationBin = {
  __typename?: 'CalibrationBin';
  count: Scalars['Int']['output'];
  lower: Scalars['Float']['output'];
  meanPredicted?: Maybe<Scalars['Float']['output']>;
  observedRate?: Maybe<Scalars['Float']['output']>;
  upper: Scalars['Float']['output'];
};

/** The state of one part the gateway depends on. */
export type ComponentHealth = {
  __typename?: 'ComponentHealth';
  /** What was seen: engine and version, latency, or the error. */
  detail?: Maybe<Scalars['String']['output']>;
  /** database, redis, models, … */
  name: Scalars['String']['output'];
  /** `ok`, `degraded` (serving with a fallback) or `down` (not ready) */
  status: Scalars['String']['output'];
};

/** Readiness of this gateway instance: the same picture as `GET /health/ready`. */
export type Health = {
  __typename?: 'Health';
  components: Array<ComponentHealth>;
  /** `ok`, `degraded`, `down`, or `draining` while shutting down */
  status: Scalars['String']['output'];
  /** Gateway version */
  version: Scalars['String']['output'];
};

/** How good a model is: `offline` (held-out data at training time) or `live` (realized outcomes). */
export type ModelMetrics = {
  __typename?: 'ModelMetrics';
  accuracy?: Maybe<Scalars['Float']['output']>;
  /** Brier score of always predicting the base rate: the bar to beat */
  baselineBrier?: Maybe<Scalars['Float']['output']>;
  brier?: Maybe<Scalars['Float']['output']>;
  calibration: Array<CalibrationBin>;
  /** Expected calibration error */
  ece?: Maybe<Scalars['Float']['output']>;
  f1?: Maybe<Scalars['Float']['output']>;
  from?: Maybe<Scalars['DateTimeISO']['output']>;
  /** Share of outcomes inside the 95% interval */
  intervalCoverage?: Maybe<Scalars['Float']['output']>;
  logLoss?: Maybe<Scalars['Float']['output']>;
  precision?: Maybe<Scalars['Float']['output']>;
  recall?: Maybe<Scalars['Float']['output']>;
  sampleSize: Scalars['Int']['output'];
  source: Scalars['String']['output'];
  to?: Maybe<Scalars['DateTimeISO']['output']>;
};

/** One trained model of a strategy. */
export type ModelVersion = {
  __typename?: 'ModelVersion';
  /** Whether this version serves the strategy now */
  active: Scalars['Boolean']['output'];
  createdAt: Scalars['DateTimeISO']['output'];
  /** Input features, in the model’s order */
  features: Array<Scalars['String']['output']>;
  /** Held-out metrics from training (source: offline) */
  offlineMetrics?: Maybe<ModelMetrics>;
  strategy: Scalars['String']['output'];
  version: Scalars['String']['output'];
};

/** A model’s view of one symbol at one bar. The same bars and model version always give the same prediction. */
export type Prediction = {
  __typename?: 'Prediction';
  /** Time of the last bar used */
  asOf: Scalars['DateTimeISO']['output'];
  /** Calibrated probability that the signal is right */
  confidence: Scalars['Float']['output'];
  /** Expected return over the horizon; null while no return model is served */
  expectedReturn?: Maybe<Scalars['Float']['output']>;
  /** Fingerprint of the exact feature vector the model saw */
  featuresHash: Scalars['String']['output'];
  /** How far ahead the event is, e.g. `1d` */
  horizon: Scalars['String']['output'];
  /** Price range for the horizon at `level` (0.8, 0.9, 0.95 or 0.99) */
  interval: PriceInterval;
  /** The model version that made this prediction */
  model: ModelVersion;
  /** Calibrated probability that the strategy’s event happens */
  probability: Scalars['Float']['output'];
  quote: Quote;
  signal: Signal;
  /** True when served from the last good bars because the market-data provider is failing */
  stale: Scalars['Boolean']['output'];
  strategy: Scalars['String']['output'];
  symbol: Scalars['String']['output'];
};


/** A model’s view of one symbol at one bar. The same bars and model version always give the same prediction. */
export type PredictionIntervalArgs = {
  level?: Scalars['Float']['input'];
};

/** A price range for the horizon that should contain the outcome with probability `level` (split-conformal). */
export type PriceInterval = {
  __typename?: 'PriceInterval';
  high: Scalars['Float']['output'];
  level: Scalars['Float']['output'];
  low: Scalars['Float']['output'];
};

export type Query = {
  __typename?: 'Query';
  /** Readiness of this instance and each component it depends on. */
  health: Health;
  /** The current prediction for one symbol */
  prediction: Prediction;
  /** Predictions for many symbols in one batch; an unknown symbol is null at its index, with an UNKNOWN_SYMBOL error at its path */
  predictions: Array<Maybe<Prediction>>;
  /** Every strategy with a loaded model, its active version and all versions */
  strategies: Array<Strategy>;
};


export type QueryPredictionArgs = {
  strategy?: InputMaybe<Scalars['String']['input']>;
  symbol: Scalars['String']['input'];
};


export type QueryPredictionsArgs = {
  strategy?: InputMaybe<Scalars['String']['input']>;
  symbols: Array<Scalars['String']['input']>;
};

/** The last bar the prediction was computed from. */
export type Quote = {
  __typename?: 'Quote';
  close: Scalars['Float']['output'];
  high: Scalars['Float']['output'];
  low: Scalars['Float']['output'];
  open: Scalars['Float']['output'];
  /** `synthetic` for the built-in simulated market; otherwise where the bar came from */
  source: Scalars['String']['output'];
  symbol: Scalars['String']['output'];
  time: Scalars['DateTimeISO']['output'];
  volume: Scalars['Float']['output'];
};

/** What the prediction suggests doing; HOLD inside the model’s thresholds. */
export type Signal =
  | 'BUY'
  | 'HOLD'
  | 'SELL';

/** Something Sibyl predicts, served by one active model version. */
export type Strategy = {
  __typename?: 'Strategy';
  activeVersion: ModelVersion;
  description: Scalars['String']['output'];
  horizon: Scalars['String']['output'];
  name: Scalars['String']['output'];
  versions: Array<ModelVersion>;
};

export type HealthQueryVariables = Exact<{ [key: string]: never; }>;


export type HealthQuery = { health: { status: string, version: string, components: Array<{ name: string, status: string, detail: string | null }> } };


export const HealthDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Health"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"health"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"version"}},{"kind":"Field","name":{"kind":"Name","value":"components"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"detail"}}]}}]}}]}}]} as unknown as DocumentNode<HealthQuery, HealthQueryVariables>;