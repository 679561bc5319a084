import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { execute, parse, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import {
  Arg,
  Args,
  ArgsType,
  Authorized,
  buildSchema,
  Ctx,
  Field,
  FieldResolver,
  InputType,
  Int,
  ObjectType,
  Query,
  Resolver,
  Root,
  type ResolverData,
} from 'type-graphql';
import { authChecker, Role, type Principal } from '../../../src/modules/access/index.js';
import { formatGraphQLError } from '../../../src/server/errors.js';
import { bindAuthorizedField } from '../../../src/schema/sync-field.js';
import { validateArgs } from '../../../src/schema/validate-args.js';

@ObjectType({ simpleResolvers: true })
class Thing {
  @Field(() => Int) n!: number;
}

@ArgsType()
class TimesArgs {
  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10)
  by?: number;
}

@InputType()
class Nested {
  @Field(() => Int) by!: number;
}

@Resolver(() => Thing)
class ThingResolver {
  @Query(() => [Thing])
  things(): Thing[] {
    return [1, 2, 3].map((n) => ({ n }));
  }

  @Authorized(Role.Analyst)
  @FieldResolver(() => Int, { nullable: true })
  times(@Root() thing: Thing, @Args(() => TimesArgs) { by }: TimesArgs, @Ctx() ctx: { calls: number }): number {
    ctx.calls++;
    return thing.n * (by ?? 2);
  }

  @FieldResolver(() => Int)
  open(@Root() thing: Thing): number {
    return thing.n;
  }

  @Authorized(Role.Analyst)
  @FieldResolver(() => Int)
  nested(@Root() thing: Thing, @Arg('input', () => Nested) input: Nested): number {
    return thing.n * input.by;
  }
}

/** Counts authChecker runs, deciding with the gateway's own authChecker. */
function countedChecker() {
  const counter = { runs: 0 };
  const check = (data: ResolverData<{ principal?: Principal | undefined }>, roles: Role[]) => {
    counter.runs++;
    return authChecker(data, roles);
  };
  return { counter, check };
}

async function schemas() {
  const typeGraphql = countedChecker();
  const bound = countedChecker();
  const build = (check: ReturnType<typeof countedChecker>['check']) =>
    buildSchema({ resolvers: [ThingResolver], authChecker: check, validateFn: validateArgs });
  const reference = await build(typeGraphql.check);
  const schema = await build(bound.check);
  bindAuthorizedField(
    schema,
    bound.check,
    'Thing',
    'times',
    ThingResolver,
    (thing: Thing, { by }: TimesArgs, ctx: object) => {
      (ctx as { calls: number }).calls++;
      return thing.n * (by ?? 2);
    },
    TimesArgs,
  );
  return { reference, schema, typeGraphql: typeGraphql.counter, bound: bound.counter };
}

const principal = (role: Role): Principal => ({ id: `${role}-1`, name: role, role, via: 'apikey' });

async function run(schema: GraphQLSchema, query: string, who: Principal | undefined) {
  const context = { principal: who, calls: 0 };
  const result = (await execute({ schema, document: parse(query), contextValue: context })) as ExecutionResult;
  const errors = (result.errors ?? []).map((e) => formatGraphQLError(e.toJSON(), true, e));
  return { data: JSON.stringify(result.data), errors, calls: context.calls };
}

describe('bindAuthorizedField answers as type-graphql’s own field resolver does, with one role check per operation', () => {
  const queries = [
    '{ things { n times } }',
    '{ things { n times(by: 3) } }',
    '{ things { times(by: 0) } }',
    '{ things { a: times b: times(by: 5) } }',
  ];
  for (const who of [principal(Role.Admin), principal(Role.Analyst), principal(Role.Viewer), undefined]) {
    test(`as ${who?.role ?? 'anonymous'}`, async () => {
      const { reference, schema, typeGraphql, bound } = await schemas();
      for (const query of queries) {
        assert.deepEqual(await run(schema, query, who), await run(reference, query, who), query);
      }
      if (who && who.role !== Role.Viewer) {
        // type-graphql checks the role for every item and alias; the bound field once per operation and field.
        assert.equal(typeGraphql.runs, 3 + 3 + 3 + 6);
        assert.equal(bound.runs, queries.length);
      } else {
        // A refusal is not remembered: every item is refused, with the same error at its own path.
        assert.equal(bound.runs, typeGraphql.runs);
      }
    });
  }

  test('a refused item answers FORBIDDEN at its own path', async () => {
    const { schema } = await schemas();
    const { errors } = await run(schema, '{ things { times } }', principal(Role.Viewer));
    assert.deepEqual(
      errors.map((e) => [e.extensions?.code, e.path?.join('.')]),
      [
        ['FORBIDDEN', 'things.0.times'],
        ['FORBIDDEN', 'things.1.times'],
        ['FORBIDDEN', 'things.2.times'],
      ],
    );
  });

  test('a field it cannot run as type-graphql would is refused at start-up', async () => {
    const { schema, reference } = await schemas();
    const { check } = countedChecker();
    assert.throws(() => bindAuthorizedField(schema, check, 'Thing', 'open', ThingResolver, () => 0), /has no @Authorized/);
    assert.throws(() => bindAuthorizedField(reference, check, 'Thing', 'nested', ThingResolver, () => 0, Nested), /input object/);
    assert.throws(() => bindAuthorizedField(reference, check, 'Thing', 'times', ThingResolver, () => 0), /takes arguments/);
  });
});
