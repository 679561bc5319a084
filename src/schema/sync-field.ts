import { assertObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import { validateItem } from './validate-args.js';

/**
 * Replaces type-graphql's resolver of one field that takes arguments with a synchronous one that
 * does what type-graphql's does (arguments copied onto an instance of their @ArgsType class, validated
 * with the schema's validator, same ArgumentValidationError) and then calls `resolve`.
 *
 * Why: type-graphql 2.0.0-rc.4 validates arguments in an `async` function, so every field with
 * arguments answers a promise even when nothing in it waits. On a list of objects that means one
 * promise per object, and graphql-js then assembles each object through promiseForObject and the
 * microtask queue instead of synchronously: on the warm 50-symbol `predictions` query, one
 * `interval(level:)` per item, that machinery and its garbage were the largest cost the gateway adds.
 *
 * Only for fields whose arguments are flat scalars (no input objects to convert), with no
 * @Authorized, middleware or injected context: the field keeps its declaration (description,
 * arguments, defaults) from the resolver class, only how it runs changes.
 */
export function bindSyncField<Root, Args extends object, Result>(
  schema: GraphQLSchema,
  typeName: string,
  fieldName: string,
  ArgsClass: new () => Args,
  resolve: (root: Root, args: Args) => Result,
): void {
  const type = assertObjectType(schema.getType(typeName));
  const field = type.getFields()[fieldName];
  if (!field) throw new Error(`bindSyncField: ${typeName}.${fieldName} is not in the schema`);
  const resolver: GraphQLFieldResolver<Root, unknown, Record<string, unknown>> = (root, args) => {
    const instance = Object.assign(new ArgsClass(), args);
    const errors = validateItem(instance);
    if (errors.length > 0) throw new ArgumentValidationError(errors);
    return resolve(root, instance);
  };
  field.resolve = resolver as GraphQLFieldResolver<unknown, unknown>;
}
