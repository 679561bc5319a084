import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { ApiKeysResolver, authChecker, type ApiKeysService } from '../modules/access/index.js';
import { HealthResolver, type HealthService } from '../modules/health/index.js';
import { ModelsResolver, type ModelsService } from '../modules/models/index.js';
import { PredictionsResolver, type PredictionService } from '../modules/predictions/index.js';
import { validateArgs } from './validate-args.js';

/** The services resolvers are constructed with, built by main.ts. */
export interface SchemaServices {
  health: HealthService;
  predictions: PredictionService;
  models: ModelsService;
  apiKeys: ApiKeysService;
}

/**
 * Builds the executable schema. Resolvers are constructed here, once, with their services (no
 * module-level singletons); type-graphql's container hands out these instances. Without services
 * (`npm run schema`, which only prints the SDL) no resolver is constructed and none may run.
 */
export async function buildGatewaySchema(services?: SchemaServices): Promise<GraphQLSchema> {
  const instances = new Map<Function, object>(services ? [
    [HealthResolver, new HealthResolver(services.health)],
    [PredictionsResolver, new PredictionsResolver(services.predictions, services.models)],
    [ModelsResolver, new ModelsResolver(services.models)],
    [ApiKeysResolver, new ApiKeysResolver(services.apiKeys)],
  ] : []);
  return buildSchema({
    resolvers: [HealthResolver, PredictionsResolver, ModelsResolver, ApiKeysResolver],
    validateFn: validateArgs,
    // `@Authorized(Role.X)` on a resolver: the least role that may use it (modules/access/roles.ts).
    authChecker,
    container: {
      get(resolverClass: Function) {
        const instance = instances.get(resolverClass);
        if (!instance) throw new Error(`resolver ${resolverClass.name} has no instance: was the schema built without services?`);
        return instance;
      },
    },
  });
}
