/**
 * The layering check CI runs (`npm run lint:deps`): dependency-cruiser with the rules of
 * .dependency-cruiser.cjs, judged against the known-violations baseline both ways.
 *
 * - a violation not in the baseline fails (a new import that breaks the layering);
 * - a baseline entry that no longer happens fails too (the import was mended: delete its entry, so it
 *   cannot come back unnoticed). dependency-cruiser's own `--ignore-known` checks only the first.
 *
 *   npm run lint:deps              check
 *   npm run lint:deps -- --help    this text
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const BASELINE = '.dependency-cruiser-known-violations.json';

interface Violation {
  type: string;
  from: string;
  to: string;
  rule: { name: string; severity: string };
  cycle?: Array<{ name: string }>;
}

if (process.argv.includes('--help')) {
  console.log(
    'npm run lint:deps: checks src/ against the layering rules in .dependency-cruiser.cjs and the known violations in ' + BASELINE,
  );
  process.exit(0);
}

const output = execFileSync('npx', ['--no-install', 'depcruise', 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
});
const found = (JSON.parse(output) as { summary: { violations: Violation[] } }).summary.violations;
const known = JSON.parse(readFileSync(BASELINE, 'utf8')) as Violation[];

const keyOf = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.to}`;
const knownKeys = new Set(known.map(keyOf));
const foundKeys = new Set(found.map(keyOf));
const added = found.filter((v) => !knownKeys.has(keyOf(v)));
const mended = known.filter((v) => !foundKeys.has(keyOf(v)));

for (const v of added)
  console.log(`new violation  ${keyOf(v)}${v.cycle ? `\n               cycle: ${v.cycle.map((c) => c.name).join(' → ')}` : ''}`);
for (const v of mended) console.log(`mended, remove from ${BASELINE}: ${keyOf(v)}`);
console.log(`layering: ${found.length} violations (${known.length} known), ${added.length} new, ${mended.length} mended but still listed`);
process.exit(added.length + mended.length === 0 ? 0 : 1);
