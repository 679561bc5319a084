import { assertObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import { validateItem } from './validate-args.js';

/** Distinct passing values remembered per single-argument field. */
const MAX_REMEMBERED = 64;

/**
 * Replaces type-graphql's resolver of one field with a synchronous one that does what type-graphql's
 * does and then calls `resolve`: with `ArgsClass`, the arguments copied onto an instance of their
 * @ArgsType class and validated with the schema's validator (same ArgumentValidationError); the root
 * passed as it is.
 *
 * Why: type-graphql 2.0.0-rc.4 validates arguments in an `async` function, so every field with
 * arguments answers a promise even when nothing in it waits. On a list of objects that means one
 * promise per object, and graphql-js then assembles each object through promiseForObject and the
 * microtask queue instead of synchronously: on the warm 50-symbol `predictions` query, one
 * `interval(level:)` per item, that machinery and its garbage were the largest cost the gateway adds.
 * And for every @FieldResolver, with or without arguments, it copies the root onto a new instance of
 * the object class (convertToType), once more for each @Root parameter: two copies of each
 * prediction for `model` and `quote`, only to read one property.
 *
 * Only for fields whose arguments are flat scalars (no input objects to convert), with no
 * @Authorized, middleware or injected context: the field keeps its declaration (description,
 * arguments, defaults) from the resolver class, only how it runs changes.
 */
export function bindSyncField<Root, Result, Args extends object = Record<string, never>>(
  schema: GraphQLSchema,
  typeName: string,
  fieldName: string,
  resolve: (root: Root, args: Args) => Result,
  ArgsClass?: new () => Args,
): void {
  const type = assertObjectType(schema.getType(typeName));
  const field = type.getFields()[fieldName];
  if (!field) throw new Error(`bindSyncField: ${typeName}.${fieldName} is not in the schema`);
  if (field.args.length > 0 && !ArgsClass)
    throw new Error(`bindSyncField: ${typeName}.${fieldName} takes arguments; name their @ArgsType class`);
  // A field with one scalar argument (interval's `level`) remembers the values that passed by value,
  // with no key to build: it is asked once per list item, nearly always with the same value.
  const single = field.args.length === 1 ? field.args[0]!.name : undefined;
  const passed = new Set<unknown>();
  const resolver: GraphQLFieldResolver<Root, unknown, Record<string, unknown>> = ArgsClass
    ? (root, args) => {
        const instance = Object.assign(new ArgsClass(), args);
        const value = single === undefined ? undefined : args[single];
        const scalar = single !== undefined && (value === null || typeof value !== 'object');
        if (!(scalar && passed.has(value))) {
          const errors = validateItem(instance);
          if (errors.length > 0) throw new ArgumentValidationError(errors);
          if (scalar && passed.size < MAX_REMEMBERED) passed.add(value);
        }
        return resolve(root, instance);
      }
    : (root) => resolve(root, {} as Args);
  field.resolve = resolver as GraphQLFieldResolver<unknown, unknown>;
}
