import { Kind, type ASTVisitor, type ValidationContext, type ValidationRule } from 'graphql';
import { tooComplex } from './limits.js';

/**
 * Root query fields an operation may select at most once: each alias of a root field runs its resolver
 * again, and some are expensive whatever their arguments (`health` probes the database and Redis), so
 * `{ h0: health { status } … h29: health { status } }` would multiply the work by the alias count.
 * Selecting the same field twice under one response key is merged by GraphQL and runs once, so it is
 * allowed. Counted per operation, through the fragments it spreads. A rejection is QUERY_TOO_COMPLEX
 * with `extensions.limit: "<field>Selections"` (a validation rule: HTTP and WebSocket run it alike).
 */
export function oncePerOperationRule(fieldNames: readonly string[]): ValidationRule {
  const limited = new Set(fieldNames);
  return (context: ValidationContext): ASTVisitor => {
    const queryType = context.getSchema().getQueryType();
    /** Response keys of limited root fields, per field, in each operation or fragment as written. */
    const keysByDefinition = new Map<object, Map<string, Set<string>>>();
    let current: Map<string, Set<string>> | undefined;
    const enter = (node: object) => {
      current = new Map();
      keysByDefinition.set(node, current);
    };
    return {
      OperationDefinition: { enter },
      FragmentDefinition: { enter },
      Field(node) {
        const name = node.name.value;
        if (!current || !limited.has(name) || !queryType || context.getParentType() !== queryType) return;
        let keys = current.get(name);
        if (!keys) current.set(name, (keys = new Set()));
        keys.add(node.alias?.value ?? name);
      },
      Document: {
        leave(document) {
          for (const operation of document.definitions) {
            if (operation.kind !== Kind.OPERATION_DEFINITION) continue;
            const sources = [operation, ...context.getRecursivelyReferencedFragments(operation)];
            for (const name of limited) {
              const keys = new Set(sources.flatMap((source) => [...(keysByDefinition.get(source)?.get(name) ?? [])]));
              if (keys.size > 1) {
                context.reportError(
                  tooComplex(
                    `\`${name}\` may be selected once per operation, found ${keys.size} (${[...keys].slice(0, 5).join(', ')}${keys.size > 5 ? ', …' : ''}).`,
                    {
                      limit: `${name}Selections`,
                      max: 1,
                      actual: keys.size,
                    },
                  ),
                );
              }
            }
          }
        },
      },
    };
  };
}
