import {
  Kind,
  getArgumentValues,
  getNamedType,
  getVariableValues,
  isCompositeType,
  isInterfaceType,
  isObjectType,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { InputName } from '../../infra/response-cache/inputs.js';
import { NESTED_FIELDS, QUERY_FIELDS, UNCACHEABLE, type FieldInputs } from './field-inputs.js';

/** Whether an operation's answer may be stored, and if so everything it reads. */
export type Plan =
  { readonly cacheable: true; readonly inputs: readonly InputName[] } | { readonly cacheable: false; readonly reason: string };

/**
 * The inputs an operation reads, from its selection and arguments, before it runs (field-inputs.ts
 * says what each field reads). Conservative where it cannot be exact: `@skip`/`@include` are ignored
 * (a skipped field still counts), and a fragment's inputs count wherever it is spread.
 *
 * Only queries are cacheable; an operation that cannot be found or whose variables do not coerce is
 * not (Apollo answers it with an error anyway).
 */
export function planOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Readonly<Record<string, unknown>> | null | undefined,
): Plan {
  const fragments = new Map<string, FragmentDefinitionNode>();
  const operations: OperationDefinitionNode[] = [];
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    else if (definition.kind === Kind.OPERATION_DEFINITION) operations.push(definition);
  }
  const operation = operationName
    ? operations.find((o) => o.name?.value === operationName)
    : operations.length === 1
      ? operations[0]
      : undefined;
  if (!operation) return { cacheable: false, reason: 'no operation' };
  if (operation.operation !== 'query') return { cacheable: false, reason: operation.operation };
  const root = schema.getQueryType();
  if (!root) return { cacheable: false, reason: 'no query type' };
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], { ...(rawVariables ?? {}) });
  if (coerced.errors) return { cacheable: false, reason: 'variables' };
  const variables = coerced.coerced;

  const inputs = new Set<InputName>();
  const walked = new Set<string>();
  let refusal: string | undefined;

  const walk = (set: SelectionSetNode, parent: GraphQLCompositeType, atRoot: boolean): void => {
    for (const selection of set.selections) {
      if (refusal) return;
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (!type || !isCompositeType(type)) return void (refusal = 'fragment type');
        walk(selection.selectionSet, type, atRoot);
        continue;
      }
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        const type = fragment && schema.getType(fragment.typeCondition.name.value);
        if (!fragment || !type || !isCompositeType(type)) return void (refusal = 'fragment');
        // A fragment reads the same inputs wherever it is spread (its arguments come from the same
        // variables), so it is walked once: a document of nested spreads cannot make this exponential.
        const key = `${fragment.name.value}\u0000${atRoot ? 'root' : type.name}`;
        if (walked.has(key)) continue;
        walked.add(key);
        walk(fragment.selectionSet, type, atRoot);
        continue;
      }
      const name = selection.name.value;
      if (name === '__typename') continue;
      let rule: FieldInputs | typeof UNCACHEABLE | undefined;
      if (atRoot) {
        rule = Object.hasOwn(QUERY_FIELDS, name) ? QUERY_FIELDS[name] : undefined;
        if (rule === undefined) return void (refusal = `Query.${name} is not in the response cache's field map`);
        if (rule === UNCACHEABLE) return void (refusal = `Query.${name}`);
        // Introspection types are the schema's own: nothing below them reads anything.
        if (name === '__schema' || name === '__type') continue;
      } else {
        const key = `${parent.name}.${name}`;
        rule = Object.hasOwn(NESTED_FIELDS, key) ? NESTED_FIELDS[key] : undefined;
        if (rule === UNCACHEABLE) return void (refusal = key);
      }
      if (!isObjectType(parent) && !isInterfaceType(parent)) return void (refusal = `field on ${parent.name}`);
      const field = parent.getFields()[name];
      if (!field) return void (refusal = `unknown field ${parent.name}.${name}`);
      if (rule) {
        let args: Record<string, unknown>;
        try {
          args = getArgumentValues(field, selection, variables);
        } catch {
          return void (refusal = `arguments of ${parent.name}.${name}`);
        }
        for (const input of rule(args)) inputs.add(input);
      }
      const type = getNamedType(field.type);
      if (selection.selectionSet && isCompositeType(type)) walk(selection.selectionSet, type, false);
    }
  };
  walk(operation.selectionSet, root, true);
  if (refusal) return { cacheable: false, reason: refusal };
  return { cacheable: true, inputs: [...inputs].sort() };
}
