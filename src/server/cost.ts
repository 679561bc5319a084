import {
  type GraphQLError,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  TypeNameMetaFieldDef,
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  isInterfaceType,
  isObjectType,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionNode,
} from 'graphql';
import { badUserInput, codedError, ErrorCode } from '../shared/errors.js';

/** What an operation asks for, counted after fragment expansion. */
export interface OperationSize {
  /** 1 per field, a list-sized field's subtree multiplied by its list size (see {@link LIST_SIZE_ARGS}). */
  cost: number;
  /** Fields after fragment expansion, each alias counted, list sizes not multiplied. */
  nodes: number;
}

/**
 * Arguments that say how many items a field returns, so its cost is that many times the cost of one
 * item: `symbols: [String!]!` (its length) and `last`/`first`/`limit: Int` (their value, defaults
 * included: `history(last: Int = 20)` costs 20 items when `last` is left out). A resolver whose
 * cost grows with another argument names it here.
 */
const LIST_SIZE_ARGS = ['symbols'] as const;
const COUNT_ARGS = ['last', 'first', 'limit'] as const;

/**
 * Fields whose work is not one item per selected field: a cost for the work they do (from their
 * arguments), added once, and list arguments that size the work rather than the answer (so they do
 * not multiply the selection). `drift` computes features and scores every stored bar of its window for
 * up to DEFAULT_DRIFT_LIMITS.maxSymbols symbols (≈ 40,000 rows, and on first use per symbol set the
 * ≈ 15 years of training bars of an older manifest), but answers one object: 500, a tenth of the
 * default MAX_QUERY_COST, so a few run at once and a rate-limited caller cannot loop it. `backtest`
 * scores every symbol-day of its span and answers one object (a curve bounded by the span): 40 per
 * symbol, so the largest one (DEFAULT_BACKTEST_LIMITS.maxSymbols, 100) costs 4,000 plus its selection,
 * within the default MAX_QUERY_COST whatever it selects, and two of them in one operation are refused.
 */
type WorkCost = (args: Record<string, unknown>) => number;
const WORK_FIELDS: ReadonlyMap<string, WorkCost> = new Map<string, WorkCost>([
  ['Query.drift', () => 500],
  ['Query.backtest', (args) => 40 * (Array.isArray(args.symbols) ? args.symbols.length : 1)],
]);

/** Thrown from an Apollo hook, an error says its own HTTP status, or it is answered 500. */
const CLIENT_STATUS = { http: { status: 400 } };

/**
 * Selection nesting (fields, fragments) beyond which measuring stops: the depth rule refuses far
 * less already; this keeps the walk's own recursion bounded whatever reaches it.
 */
const MAX_WALK_DEPTH = 128;

/**
 * Our own walk rather than graphql-query-complexity's: that library walks every fragment spread
 * anew, so a tree of spreads (a fragment spreading another 30 times, that one 30 times…) costs time
 * exponential in the document, and it guards itself by throwing an uncoded error past 10,000 nodes;
 * a caller that treated the error as "unknown cost" admitted the operation for almost nothing. Here
 * each fragment is measured once (memoized by name) and a spread adds what its fragment expands to,
 * so the walk is linear in the document while the numbers are those of the expanded operation, and
 * every failure is a coded refusal.
 *
 * The numbers are an upper bound of what execution does, never less: as in graphql-js's field
 * collection, a fragment spread a second time in the same selection set adds nothing, but fields
 * that execution merges (the same response key twice, or a fragment already collected through
 * another path) are counted each time here, and both sides of a `@skip`/`@include` or of fragments
 * on different member types of an abstract type are counted.
 *
 * Lists without a size argument (`strategies`, `factors`, `confidenceHistory`…) count as one item:
 * their real size is bounded at run time by MAX_RESPONSE_ITEMS (response-meter.ts).
 *
 * Throws BAD_USER_INPUT when the variables do not fit the operation or a list argument is longer
 * than `maxListSize`, QUERY_TOO_COMPLEX when the operation cannot be measured.
 */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | undefined | null,
  variables: Record<string, unknown> | undefined | null,
  maxListSize: number,
): OperationSize {
  const operation = getOperationAST(document, operationName);
  if (!operation) throw badUserInput('Could not determine which operation to run: name one with operationName', CLIENT_STATUS);
  const root = schema.getRootType(operation.operation);
  if (!root) throw unmeasurable(`this schema has no ${operation.operation} type`);
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {}, { maxErrors: 1 });
  if (coerced.errors) throw badUserInput(coerced.errors[0]!.message, CLIENT_STATUS);
  const variableValues = coerced.coerced;

  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const measuredFragments = new Map<string, OperationSize>();
  const measuring = new Set<string>();

  function fragmentSize(name: string, depth: number): OperationSize {
    const known = measuredFragments.get(name);
    if (known) return known;
    const fragment = fragments.get(name);
    if (!fragment) throw unmeasurable(`unknown fragment "${name}"`);
    if (measuring.has(name)) throw unmeasurable(`fragment "${name}" spreads itself`);
    const type = schema.getType(fragment.typeCondition.name.value);
    if (!type) throw unmeasurable(`unknown type "${fragment.typeCondition.name.value}"`);
    measuring.add(name);
    const size = selectionsSize(fragment.selectionSet.selections, type, new Set([name]), depth + 1);
    measuring.delete(name);
    measuredFragments.set(name, size);
    return size;
  }

  /** `spread` holds the fragments already spread in this selection set: graphql-js collects each once. */
  function selectionsSize(
    selections: readonly SelectionNode[],
    parent: GraphQLNamedType,
    spread: Set<string>,
    depth: number,
  ): OperationSize {
    if (depth > MAX_WALK_DEPTH) throw unmeasurable(`selections nested deeper than ${MAX_WALK_DEPTH}`);
    let cost = 0;
    let nodes = 0;
    for (const selection of selections) {
      if (selection.kind === Kind.FIELD) {
        const field = fieldOf(schema, parent, selection.name.value);
        const work = WORK_FIELDS.get(`${parent.name}.${field.name}`);
        let multiplier = 1;
        if (field.args.length > 0) {
          const args = getArgumentValues(field, selection, variableValues);
          multiplier = listMultiplier(args, maxListSize);
          if (work !== undefined) {
            multiplier = 1;
            cost += work(args);
          }
        } else if (work !== undefined) cost += work({});
        let child: OperationSize = { cost: 0, nodes: 0 };
        if (selection.selectionSet)
          child = selectionsSize(selection.selectionSet.selections, getNamedType(field.type), new Set(), depth + 1);
        cost += multiplier * (1 + child.cost);
        nodes += 1 + child.nodes;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (!type) throw unmeasurable(`unknown type "${selection.typeCondition?.name.value}"`);
        const inner = selectionsSize(selection.selectionSet.selections, type, spread, depth + 1);
        cost += inner.cost;
        nodes += inner.nodes;
      } else {
        const name = selection.name.value;
        if (spread.has(name)) continue;
        spread.add(name);
        const inner = fragmentSize(name, depth);
        cost += inner.cost;
        nodes += inner.nodes;
      }
    }
    return { cost, nodes };
  }

  return selectionsSize(operation.selectionSet.selections, root, new Set(), 0);
}

function fieldOf(schema: GraphQLSchema, parent: GraphQLNamedType, name: string): GraphQLField<unknown, unknown> {
  if (name === TypeNameMetaFieldDef.name) return TypeNameMetaFieldDef;
  if (parent === schema.getQueryType()) {
    if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
    if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
  }
  const field = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
  if (!field) throw unmeasurable(`unknown field "${parent.name}.${name}"`);
  return field;
}

function listMultiplier(args: Record<string, unknown>, maxListSize: number): number {
  let multiplier = 1;
  for (const name of LIST_SIZE_ARGS) {
    const value = args[name];
    if (!Array.isArray(value)) continue;
    // Refused here, before anything runs, with the resolver's own words (it checks too).
    if (value.length > maxListSize)
      throw badUserInput(`${name}: at most ${maxListSize} per request, got ${value.length}`, { limit: maxListSize, ...CLIENT_STATUS });
    multiplier *= Math.max(1, value.length);
  }
  for (const name of COUNT_ARGS) {
    const value = args[name];
    if (typeof value === 'number' && Number.isFinite(value)) multiplier *= Math.max(1, value);
  }
  return multiplier;
}

function unmeasurable(why: string): GraphQLError {
  return codedError(ErrorCode.QUERY_TOO_COMPLEX, `The operation's cost could not be measured (${why}); it is refused.`, {
    limit: 'cost',
    http: { status: 400 },
  });
}
