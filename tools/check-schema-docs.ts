/**
 * The schema-docs check `npm run drift` runs: every field, argument and input field of the committed
 * schema.graphql has a description (src/schema/undocumented.ts says why). Exits 1 naming each one
 * without, 0 when there is none.
 *
 *   node --import tsx tools/check-schema-docs.ts [schema.graphql]
 */
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { undocumentedSchemaParts } from '../src/schema/undocumented.js';

if (process.argv.includes('--help')) {
  console.log(
    'usage: node --import tsx tools/check-schema-docs.ts [schema.graphql]: fails on a field, argument or input field without a description',
  );
  process.exit(0);
}
const file = process.argv[2] ?? 'schema.graphql';
const missing = undocumentedSchemaParts(buildSchema(readFileSync(file, 'utf8')));
for (const part of missing) console.log(`undocumented: ${part}`);
if (missing.length > 0) {
  console.log(
    `${file}: ${missing.length} fields or arguments without a description: give each a \`description\` in its type-graphql decorator`,
  );
  process.exit(1);
}
console.log(`${file}: every field, argument and input field has a description`);
