import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  Kind,
  parse,
  print,
  visit,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type TypeNode,
} from 'graphql';
import { projectRoot } from './process.js';

/** One named query: the text to send (its document: the operation and the fragments it uses). */
export interface NamedQuery {
  readonly name: string;
  readonly query: string;
  readonly variables: readonly { readonly name: string; readonly type: string; readonly required: boolean }[];
  readonly source: 'test/operations' | 'web app';
}

/**
 * Every query the project's clients send: the documents of test/operations and the web app's trusted
 * documents (web/src/generated/persisted-documents.json), one entry per named query operation, each
 * sent with every fragment of its file (unused ones are left out: GraphQL refuses them).
 */
export function projectQueries(): NamedQuery[] {
  const files = readdirSync(path.join(projectRoot, 'test/operations'))
    .filter((f) => f.endsWith('.graphql'))
    .map((f) => ({ text: readFileSync(path.join(projectRoot, 'test/operations', f), 'utf8'), source: 'test/operations' as const }));
  const web = Object.values(
    JSON.parse(readFileSync(path.join(projectRoot, 'web/src/generated/persisted-documents.json'), 'utf8')) as Record<string, string>,
  ).map((text) => ({ text, source: 'web app' as const }));
  // test/operations share fragments between files (as the tests that send them concatenate them).
  const shared = files.flatMap(({ text }) => parse(text).definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION));
  const queries: NamedQuery[] = [];
  for (const { text, source } of [...files, ...web]) {
    const document = parse(text);
    const pool: DocumentNode = source === 'web app' ? document : { kind: Kind.DOCUMENT, definitions: [...document.definitions, ...shared] };
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== 'query' || !definition.name) continue;
      queries.push({
        name: definition.name.value,
        query: print(alone(pool, definition)),
        variables: (definition.variableDefinitions ?? []).map((v) => ({
          name: v.variable.name.value,
          type: typeText(v.type),
          required: v.type.kind === Kind.NON_NULL_TYPE && v.defaultValue === undefined,
        })),
        source,
      });
    }
  }
  return queries;
}

/** The operation with only the fragments it spreads (transitively). */
function alone(document: DocumentNode, operation: OperationDefinitionNode): DocumentNode {
  const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
  const used = new Set<string>();
  const spreadsOf = (node: OperationDefinitionNode | FragmentDefinitionNode) =>
    visit(node, {
      [Kind.FRAGMENT_SPREAD](spread) {
        if (used.has(spread.name.value)) return;
        used.add(spread.name.value);
        const fragment = fragments.get(spread.name.value);
        if (fragment) spreadsOf(fragment);
      },
    });
  spreadsOf(operation);
  return { kind: Kind.DOCUMENT, definitions: [operation, ...[...used].map((name) => fragments.get(name)!)] };
}

function typeText(type: TypeNode): string {
  if (type.kind === Kind.NON_NULL_TYPE) return `${typeText(type.type)}!`;
  if (type.kind === Kind.LIST_TYPE) return `[${typeText(type.type)}]`;
  return type.name.value;
}

/** mulberry32: a seeded generator, so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface VariableChoices {
  readonly symbols: readonly string[];
  readonly strategies: readonly string[];
  readonly versions: readonly string[];
  /** Instants inside the market's past, for asOf, from, to and windows (oldest first). */
  readonly past: readonly Date[];
}

/**
 * Variables for a query, drawn at random by name and type, from values that mostly make sense (known
 * symbols, strategies and versions, past instants) with a few that do not (an unknown symbol). Optional
 * variables are left out half the time.
 */
export function randomVariables(query: NamedQuery, random: () => number, choices: VariableChoices): Record<string, unknown> {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const symbol = () => (random() < 0.05 ? 'NOPE' : pick(choices.symbols));
  const symbols = () => {
    const n = 1 + Math.floor(random() * 4);
    return [...new Set(Array.from({ length: n }, symbol))];
  };
  const window = () => {
    const i = Math.floor(random() * (choices.past.length - 1));
    return { from: choices.past[i]!.toISOString(), to: choices.past[i + 1]!.toISOString() };
  };
  const variables: Record<string, unknown> = {};
  for (const v of query.variables) {
    if (!v.required && random() < 0.5) continue;
    const base = v.type.replaceAll('!', '');
    let value: unknown;
    if (base === '[String]') value = symbols();
    else if (v.name === 'symbol') value = symbol();
    else if (v.name === 'strategy') value = pick(choices.strategies);
    else if (v.name === 'version' || v.name === 'a' || v.name === 'b') value = pick(choices.versions);
    else if (base === 'DateTimeISO') value = pick(choices.past).toISOString();
    else if (base === 'DateWindow') value = window();
    else if (v.name === 'level') value = pick([0.8, 0.9, 0.95]);
    else if (v.name === 'last') value = pick([1, 3, 20]);
    else if (v.name === 'source') value = pick(['synthetic', 'stored']);
    else if (v.name === 'bucket') value = pick(['1 hour', '1 day']);
    else if (v.name === 'window') value = pick(['1 day', '7 days']);
    else if (v.name === 'rule') value = pick(['LONG_ONLY', 'LONG_SHORT']);
    else if (v.name === 'costBps') value = pick([0, 5]);
    else if (base === 'Float') value = 0.5;
    else if (base === 'Int') value = 5;
    else if (base === 'String') value = pick(choices.strategies);
    else throw new Error(`no random value for $${v.name}: ${v.type} (${query.name})`);
    variables[v.name] = value;
  }
  return variables;
}
