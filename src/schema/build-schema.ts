import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { ApiKeysResolver, authChecker, type ApiKeysService } from '../modules/access/index.js';
import { BacktestResolver, type BacktestService } from '../modules/backtest/index.js';
import { DriftResolver, type DriftService } from '../modules/drift/index.js';
import { ExplanationsResolver, bindExplanationField } from '../modules/explanations/index.js';
import { HealthResolver, type HealthService } from '../modules/health/index.js';
import {
  HistoryResolver,
  PredictionHistoryResolver,
  bindPredictionHistoryField,
  type HistoryQueryService,
} from '../modules/history/index.js';
import { MetricsResolver, type ComparisonService, type MetricsService } from '../modules/metrics/index.js';
import { ModelsResolver, type ModelsService } from '../modules/models/index.js';
import {
  PredictionsResolver,
  bindPredictionQueries,
  bindSyncPredictionFields,
  type BindAuthorizedField,
  type PointInTimePredictions,
  type PredictionService,
} from '../modules/predictions/index.js';
import { SignalsResolver, bindSignalsService, type SignalsService } from '../modules/signals/index.js';
import { bindAuthorizedField, bindSyncField } from './sync-field.js';
import { validateArgs } from './validate-args.js';

/** The services resolvers are constructed with, built by main.ts. */
export interface SchemaServices {
  health: HealthService;
  predictions: PredictionService;
  /** Without it, `prediction`/`predictions` with `asOf` or `version` answer UNAVAILABLE. */
  pointInTime?: PointInTimePredictions;
  models: ModelsService;
  history: HistoryQueryService;
  metrics: MetricsService;
  /** Without it `compareModels` answers UNAVAILABLE. */
  comparison?: ComparisonService;
  apiKeys: ApiKeysService;
  /** Without it `backtest` answers UNAVAILABLE. */
  backtest?: BacktestService;
  /** Without it `drift` answers UNAVAILABLE. */
  drift?: DriftService;
  /** Without it (a schema for tests that run no subscription) `signals` answers UNAVAILABLE. */
  signals?: SignalsService;
}

/** A resolver class, the key type-graphql's container is asked for. */
type ResolverClass = abstract new (...args: never[]) => object;

/**
 * Builds the executable schema. Resolvers are constructed here, once, with their services (no
 * module-level singletons); type-graphql's container hands out these instances. Without services
 * (`npm run schema`, which only prints the SDL) no resolver is constructed and none may run.
 */
export async function buildGatewaySchema(services?: SchemaServices): Promise<GraphQLSchema> {
  const predictionsResolver = services && new PredictionsResolver(services.predictions, services.models, services.pointInTime);
  const instances = new Map<ResolverClass, object>(
    services && predictionsResolver
      ? [
          [HealthResolver, new HealthResolver(services.health)],
          [PredictionsResolver, predictionsResolver],
          [ModelsResolver, new ModelsResolver(services.models)],
          [ExplanationsResolver, new ExplanationsResolver()],
          [HistoryResolver, new HistoryResolver(services.history)],
          [PredictionHistoryResolver, new PredictionHistoryResolver(services.history)],
          [MetricsResolver, new MetricsResolver(services.metrics, services.comparison)],
          [DriftResolver, new DriftResolver(services.drift)],
          [SignalsResolver, new SignalsResolver()],
          [ApiKeysResolver, new ApiKeysResolver(services.apiKeys)],
          [BacktestResolver, new BacktestResolver(services.backtest)],
        ]
      : [],
  );
  const schema = await buildSchema({
    resolvers: [
      HealthResolver,
      PredictionsResolver,
      ModelsResolver,
      ExplanationsResolver,
      HistoryResolver,
      PredictionHistoryResolver,
      MetricsResolver,
      DriftResolver,
      SignalsResolver,
      ApiKeysResolver,
      BacktestResolver,
    ],
    validateFn: validateArgs,
    // Required by type-graphql once a schema has a subscription; `signals` brings its own subscribe
    // function (SignalsService), so this topic-based one is never used.
    pubSub: unusedPubSub,
    // `@Authorized(Role.X)` on a resolver: the least role that may use it (modules/access/roles.ts).
    authChecker,
    container: {
      get(resolverClass: ResolverClass) {
        const instance = instances.get(resolverClass);
        if (!instance) throw new Error(`resolver ${resolverClass.name} has no instance: was the schema built without services?`);
        return instance;
      },
    },
  });
  bindSyncPredictionFields(
    (typeName, fieldName, resolve, ArgsClass) => bindSyncField(schema, typeName, fieldName, resolve, ArgsClass),
    services?.models,
  );
  if (services) {
    const bindAuthorized: BindAuthorizedField = (typeName, fieldName, resolverClass, resolve, ArgsClass) =>
      bindAuthorizedField(schema, authChecker, typeName, fieldName, resolverClass, resolve as never, ArgsClass);
    bindPredictionQueries(bindAuthorized, predictionsResolver!);
    bindPredictionHistoryField(bindAuthorized, services.history);
    bindExplanationField(bindAuthorized);
  }
  if (services?.signals) bindSignalsService(schema, services.signals);
  return schema;
}

const unusedPubSub = {
  publish() {
    throw new Error('topic-based subscriptions are not used: signals subscribes through SignalsService');
  },
  subscribe(): AsyncIterable<unknown> {
    throw new Error('topic-based subscriptions are not used: signals subscribes through SignalsService');
  },
};
