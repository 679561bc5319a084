import {
  assertObjectType,
  getNamedType,
  isInputObjectType,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLResolveInfo,
  type GraphQLSchema,
} from 'graphql';
import { ArgumentValidationError, AuthenticationError, AuthorizationError, getMetadataStorage, type AuthCheckerFn } from 'type-graphql';
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
  const field = flatField(schema, typeName, fieldName, ArgsClass, 'bindSyncField');
  const argsOf = argsInstance(field, ArgsClass);
  field.resolve = ((root: Root, args: Record<string, unknown>) => resolve(root, argsOf(args))) as GraphQLFieldResolver<unknown, unknown>;
}

/**
 * bindSyncField for an @Authorized field resolver that needs the operation's context (a per-request
 * loader): `Prediction.history`, `Prediction.explanation`. type-graphql runs, for every item of a list,
 * its auth middleware (a promise), a copy of the root onto a new instance of the object class, and the
 * conversion of the arguments onto their class, which looks every argument's type up in its metadata
 * again (`getType`: ~4% of a 50-symbol `predictions { history }` request on its own). Here:
 *
 * - the roles are the ones @Authorized gave the method (read from type-graphql's metadata, so the
 *   decorator stays the one place they are written), checked with the schema's authChecker once per
 *   operation: the first item's check is remembered for the operation's context object. Sound because
 *   the authChecker decides from the context alone (modules/access/auth-checker.ts: the principal's
 *   role), never from the item. A refusal is not remembered: each item is refused with the same error
 *   at its own path, as type-graphql does;
 * - the arguments are converted and validated as bindSyncField does;
 * - `resolve` gets the record as it is, the arguments and the context.
 *
 * Refuses (at start-up) a field with no @Authorized, with middlewares or class-level @Authorized (which
 * type-graphql would run and this would not), or with input-object arguments.
 */
export function bindAuthorizedField<
  Root,
  Result,
  Args extends object = Record<string, never>,
  Ctx extends object = object,
  RoleName = string,
>(
  schema: GraphQLSchema,
  authChecker: AuthCheckerFn<Ctx, RoleName>,
  typeName: string,
  fieldName: string,
  resolverClass: abstract new (...args: never[]) => object,
  resolve: (root: Root, args: Args, context: Ctx) => Result,
  ArgsClass?: new () => Args,
): void {
  const field = flatField(schema, typeName, fieldName, ArgsClass, 'bindAuthorizedField');
  const metadata = getMetadataStorage();
  const authorized = metadata.authorizedFields.find((f) => f.target === resolverClass && f.fieldName === fieldName);
  if (!authorized) throw new Error(`bindAuthorizedField: ${resolverClass.name}.${fieldName} has no @Authorized`);
  // What type-graphql would also run and this does not: refused rather than skipped.
  const more =
    metadata.authorizedResolver.some((r) => r.target === resolverClass) ||
    metadata.middlewares.some((m) => m.target === resolverClass && m.fieldName === fieldName) ||
    metadata.resolverMiddlewares.some((m) => m.target === resolverClass);
  if (more) throw new Error(`bindAuthorizedField: ${resolverClass.name}.${fieldName} has class-level @Authorized or middlewares`);
  const roles = authorized.roles as RoleName[];
  const argsOf = argsInstance(field, ArgsClass);
  /** Operation contexts whose caller passed the check for this field. */
  const passed = new WeakSet<Ctx>();
  const run = (root: Root, args: Record<string, unknown>, context: Ctx) => resolve(root, argsOf(args), context);
  field.resolve = ((root: Root, args: Record<string, unknown>, context: Ctx, info: GraphQLResolveInfo) => {
    if (passed.has(context)) return run(root, args, context);
    const verdict = authChecker({ root, args, context, info }, roles);
    const decide = (granted: boolean) => {
      // type-graphql's authMode "error" (its default, and ours): a `false` verdict is its generic error.
      if (!granted) throw roles.length === 0 ? new AuthenticationError() : new AuthorizationError();
      passed.add(context);
      return run(root, args, context);
    };
    return typeof verdict === 'boolean' ? decide(verdict) : Promise.resolve(verdict).then(decide);
  }) as GraphQLFieldResolver<unknown, unknown>;
}

/** The field, checked to be one these binders can run: arguments named by ArgsClass, none an input object. */
function flatField(
  schema: GraphQLSchema,
  typeName: string,
  fieldName: string,
  ArgsClass: (new () => object) | undefined,
  binder: string,
): GraphQLField<unknown, unknown> {
  const type = assertObjectType(schema.getType(typeName));
  const field = type.getFields()[fieldName];
  if (!field) throw new Error(`${binder}: ${typeName}.${fieldName} is not in the schema`);
  if (field.args.length > 0 && !ArgsClass)
    throw new Error(`${binder}: ${typeName}.${fieldName} takes arguments; name their @ArgsType class`);
  const nested = field.args.find((arg) => isInputObjectType(getNamedType(arg.type)));
  if (nested) throw new Error(`${binder}: ${typeName}.${fieldName}(${nested.name}:) is an input object, which is not converted here`);
  return field;
}

/**
 * The arguments copied onto an instance of their @ArgsType class and validated with the schema's
 * validator (same ArgumentValidationError as type-graphql). A field with one scalar argument
 * (interval's `level`) remembers the values that passed by value, with no key to build: it is asked
 * once per list item, nearly always with the same value.
 */
function argsInstance<Args extends object>(
  field: GraphQLField<unknown, unknown>,
  ArgsClass: (new () => Args) | undefined,
): (args: Record<string, unknown>) => Args {
  if (!ArgsClass) return () => ({}) as Args;
  const single = field.args.length === 1 ? field.args[0]!.name : undefined;
  const passed = new Set<unknown>();
  return (args) => {
    const instance = Object.assign(new ArgsClass(), args);
    const value = single === undefined ? undefined : args[single];
    const scalar = single !== undefined && (value === null || typeof value !== 'object');
    if (!(scalar && passed.has(value))) {
      const errors = validateItem(instance);
      if (errors.length > 0) throw new ArgumentValidationError(errors);
      if (scalar && passed.size < MAX_REMEMBERED) passed.add(value);
    }
    return instance;
  };
}
