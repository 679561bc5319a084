/**
 * Writes the web app's trusted documents (src/server/trusted-documents.ts): every operation codegen
 * generated into web/src/generated/graphql.ts, as `sha256 → document`, to
 * web/src/generated/persisted-documents.json. codegen.yml runs it after every `npm run codegen`, so
 * `npm run drift` fails when the committed file is stale.
 *
 *   node --import tsx tools/persisted-documents.ts
 */
import { writeFileSync } from 'node:fs';
import { Kind, type DocumentNode } from 'graphql';
import * as generated from '../web/src/generated/graphql.js';
import { manifestOf } from '../src/server/trusted-documents.js';

export const MANIFEST_FILE = 'web/src/generated/persisted-documents.json';

/** The generated operation documents (not the fragments' own): the exact objects the web app hands to urql. */
export function webDocuments(): DocumentNode[] {
  return Object.values(generated as Record<string, unknown>).filter(
    (value): value is DocumentNode =>
      typeof value === 'object' &&
      value !== null &&
      (value as { kind?: unknown }).kind === Kind.DOCUMENT &&
      (value as DocumentNode).definitions.some((definition) => definition.kind === Kind.OPERATION_DEFINITION),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--help')) {
    console.log(`usage: node --import tsx tools/persisted-documents.ts: writes ${MANIFEST_FILE} from the generated web operations`);
    process.exit(0);
  }
  const manifest = manifestOf(webDocuments());
  writeFileSync(MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
}
