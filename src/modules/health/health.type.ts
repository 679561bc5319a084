import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'The state of one part the gateway depends on.' })
export class ComponentHealth {
  @Field(() => String, { description: 'database, redis, models, …' })
  name!: string;

  @Field(() => String, { description: '`ok`, `degraded` (serving with a fallback) or `down` (not ready)' })
  status!: string;

  @Field(() => String, { nullable: true, description: 'What was seen: engine and version, latency, or the error.' })
  detail?: string | undefined;
}

@ObjectType({ description: 'Readiness of this gateway instance: the same picture as `GET /health/ready`.' })
export class Health {
  @Field(() => String, { description: '`ok`, `degraded`, `down`, or `draining` while shutting down' })
  status!: string;

  @Field(() => String, { description: 'Gateway version' })
  version!: string;

  @Field(() => [ComponentHealth], { description: 'Each part the gateway depends on (database, redis, models, …) and its state' })
  components!: ComponentHealth[];
}
