import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { GraphQLError, Kind, parse, print, visit, type DocumentNode } from 'graphql';

/**
 * Trusted documents (TRUSTED_DOCUMENTS_ONLY): the operations registered at build time, a JSON object of
 * `sha256 hex → document` (`npm run codegen` writes the web app's, web/src/generated/persisted-documents.json).
 *
 * An operation is recognised by the hash of its canonical text, not of the bytes the client sent: the
 * document as parsed, printed by graphql-js, with every unaliased `__typename` left out. Clients print
 * documents their own way (urql and Apollo Client compact or reformat them) and add `__typename` to
 * every selection for their caches; none of that changes what runs or what it may read (a type's
 * name is not data), so it must not turn a registered operation into a refused one. Anything else (a
 * field, an argument, a literal, an alias, a directive) changes the hash. The same rule, `documentHash`,
 * computes the registered hashes (tools/persisted-documents.ts) and the incoming ones (admission.ts),
 * on HTTP and graphql-ws alike.
 */
export interface TrustedDocuments {
  /** How many documents are registered. */
  readonly size: number;
  /** Whether this parsed document is one of them (remembered per DocumentNode). */
  has(document: DocumentNode): boolean;
}

export function canonicalDocument(document: DocumentNode): string {
  return print(
    visit(document, {
      [Kind.FIELD](node) {
        return node.name.value === '__typename' && !node.alias ? null : undefined;
      },
    }),
  );
}

export function documentHash(document: DocumentNode): string {
  return createHash('sha256').update(canonicalDocument(document)).digest('hex');
}

/**
 * The registered set from a manifest. Each entry is checked: its document parses and its key is that
 * document's hash, so a hand-edited or stale manifest stops start-up instead of refusing the web app.
 */
export function trustedDocuments(manifest: unknown, source = 'the trusted documents manifest'): TrustedDocuments {
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
    throw new Error(`${source}: expected a JSON object of sha256 hash → GraphQL document`);
  }
  const hashes = new Set<string>();
  for (const [key, text] of Object.entries(manifest as Record<string, unknown>)) {
    if (typeof text !== 'string') throw new Error(`${source}: the entry ${key} is not a string`);
    let hash: string;
    try {
      hash = documentHash(parse(text));
    } catch (error) {
      throw new Error(`${source}: the document of ${key} does not parse: ${error instanceof GraphQLError ? error.message : String(error)}`);
    }
    if (hash !== key)
      throw new Error(`${source}: the entry ${key} holds a document whose hash is ${hash} (regenerate it: npm run codegen)`);
    hashes.add(hash);
  }
  const known = new WeakMap<DocumentNode, boolean>();
  return {
    size: hashes.size,
    has(document) {
      let trusted = known.get(document);
      if (trusted === undefined) known.set(document, (trusted = hashes.has(documentHash(document))));
      return trusted;
    },
  };
}

export async function loadTrustedDocuments(file: string): Promise<TrustedDocuments> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`TRUSTED_DOCUMENTS_ONLY=true but ${file} cannot be read (${(error as Error).message}); run npm run codegen`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`);
  }
  const documents = trustedDocuments(manifest, file);
  if (documents.size === 0) throw new Error(`${file} registers no document: TRUSTED_DOCUMENTS_ONLY=true would refuse every viewer`);
  return documents;
}

/**
 * The manifest of these documents (fragment-only ones left out: a client never sends one alone), keyed
 * by hash in sorted order so that regenerating it changes the file only when an operation changed. Each
 * entry's text is the canonical one, so its key is also the SHA-256 of the text itself (what automatic
 * persisted queries check).
 */
export function manifestOf(documents: Iterable<DocumentNode>): Record<string, string> {
  const entries: [string, string][] = [];
  for (const document of documents) {
    if (!document.definitions.some((definition) => definition.kind === Kind.OPERATION_DEFINITION)) continue;
    entries.push([documentHash(document), canonicalDocument(document)]);
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}
