/**
 * The breaking-change check `npm run drift` runs (docs/decisions/schema-versioning.md): compares
 * schema.graphql (the schema the code builds; drift regenerates it first) with schema.baseline.graphql
 * (the last released schema) and fails on a breaking change that schema.accepted-changes.json does not
 * list, or on a new deprecation whose reason does not carry a removal date per the README's policy.
 *
 *   node --import tsx tools/check-schema-compat.ts                    check
 *   node --import tsx tools/check-schema-compat.ts --update-baseline  release: baseline := schema.graphql,
 *                                                                     accepted list emptied
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { compareSchemas, type AcceptedChange } from './schema-compat.js';

const CURRENT = 'schema.graphql';
const BASELINE = 'schema.baseline.graphql';
const ACCEPTED = 'schema.accepted-changes.json';

if (process.argv.includes('--help')) {
  console.log(`usage: npm run schema:check [-- --update-baseline]

Fails on a breaking change from ${BASELINE} (the last released schema) to ${CURRENT} not listed in
${ACCEPTED}, and on a new @deprecated without "removal after YYYY-MM-DD" in its reason.
--update-baseline (at a release) copies ${CURRENT} to ${BASELINE} and empties ${ACCEPTED}.`);
  process.exit(0);
}
const unknown = process.argv.slice(2).filter((arg) => arg !== '--update-baseline');
if (unknown.length > 0) {
  console.error(`schema:check: unknown argument ${unknown.join(' ')} (see --help)`);
  process.exit(2);
}

if (process.argv.includes('--update-baseline')) {
  copyFileSync(CURRENT, BASELINE);
  writeFileSync(ACCEPTED, `${JSON.stringify({ accepted: [] }, null, 2)}\n`);
  console.log(`${BASELINE} is now ${CURRENT}; ${ACCEPTED} emptied`);
  process.exit(0);
}

const { accepted } = JSON.parse(readFileSync(ACCEPTED, 'utf8')) as { accepted: AcceptedChange[] };
const report = await compareSchemas(readFileSync(BASELINE, 'utf8'), readFileSync(CURRENT, 'utf8'), accepted);
for (const { change, why } of report.allowed) console.log(`allowed breaking change: ${change.message} (${why})`);
for (const change of report.dangerous) console.log(`dangerous change: ${change.message}`);
for (const entry of report.unusedAccepted) {
  console.log(`${ACCEPTED}: ${entry.type} ${entry.path} matches no change (remove it)`);
}
for (const change of report.breaking) console.log(`BREAKING: ${change.message} [${change.type} ${change.path ?? ''}]`);
for (const violation of report.policyViolations) console.log(`deprecation policy: ${violation}`);
if (report.breaking.length > 0 || report.policyViolations.length > 0) {
  console.log(
    `${CURRENT} vs ${BASELINE}: ${report.breaking.length} breaking changes, ${report.policyViolations.length} deprecations off policy. ` +
      `Keep the old field (deprecate it with a removal date) or, if the break is deliberate, list {type, path, reason} in ${ACCEPTED}`,
  );
  process.exit(1);
}
console.log(`${CURRENT} vs ${BASELINE}: no unaccepted breaking change`);
