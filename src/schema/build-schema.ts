import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { HealthResolver, type HealthService } from '../modules/health/index.js';

/** The services resolvers are constructed with. main.ts builds them; the emit script passes stand-ins. */
export interface SchemaServices {
  health: HealthService;
}

/**
 * Builds the executable schema. Resolvers are constructed here, once, with their services (no
 * module-level singletons); type-graphql's container hands out these instances.
 */
export async function buildGatewaySchema(services: SchemaServices): Promise<GraphQLSchema> {
  const instances = new Map<Function, object>([[HealthResolver, new HealthResolver(services.health)]]);
  return buildSchema({
    resolvers: [HealthResolver],
    validate: true,
    container: {
      get(resolverClass: Function) {
        const instance = instances.get(resolverClass);
        if (!instance) throw new Error(`no instance registered for resolver ${resolverClass.name}`);
        return instance;
      },
    },
  });
}
