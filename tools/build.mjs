// The gateway's production build: tsc (tsconfig.build.json) compiles src/ and db/ to dist/, which
// `npm start` runs with plain node. Plain JavaScript on purpose: `npm start` runs this first
// (`prestart`), also where tsx is not installed.
//
//   node tools/build.mjs             clean build (npm run build; also `prepare`, so npm install / npm ci build)
//   node tools/build.mjs --if-stale  build only when dist/ is missing or older than its sources (prestart)
//
// Why tsc and not esbuild: docs/decisions/production-build.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const entry = path.join(dist, 'src', 'main.js');
/** Written after a successful build: its mtime is when dist/ last matched its sources. */
const stamp = path.join(dist, '.build-stamp');
/** What the build reads: a change to any of these makes dist/ stale. */
const sources = ['src', 'db', 'tsconfig.json', 'tsconfig.build.json'].map((p) => path.join(root, p));

function newestMtime(target) {
  if (!existsSync(target)) return 0;
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(target).reduce((newest, name) => Math.max(newest, newestMtime(path.join(target, name))), stat.mtimeMs);
}

function staleReason() {
  if (!existsSync(entry) || !existsSync(stamp)) return 'dist/ is missing';
  const built = statSync(stamp).mtimeMs;
  const changed = sources.find((source) => newestMtime(source) > built);
  return changed ? `${path.relative(root, changed)} changed since the last build` : undefined;
}

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log('usage: node tools/build.mjs [--if-stale]\n\nCompiles src/ and db/ to dist/ with tsc (tsconfig.build.json).');
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--if-stale');
if (unknown.length > 0) {
  console.error(`build: unknown argument ${unknown.join(' ')}\nusage: node tools/build.mjs [--if-stale]`);
  process.exit(2);
}
const ifStale = args.includes('--if-stale');
const reason = ifStale ? staleReason() : 'requested';
if (!reason) process.exit(0);

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // An install without dev dependencies (npm ci --omit=dev) cannot compile; a dist/ copied in (the
  // Docker image) is what it runs, stale or not.
  if (existsSync(entry)) {
    console.error(`build: ${reason}, but typescript is not installed (npm install without dev dependencies?); running the existing dist/`);
    process.exit(0);
  }
  console.error('build: dist/ is missing and typescript is not installed: run `npm install` (with dev dependencies), then `npm run build`');
  process.exit(1);
}

const started = performance.now();
// A requested build starts clean, so files deleted from src/ do not linger in dist/; a stale-only
// rebuild stays incremental (dist/.tsbuildinfo) because it runs before every `npm start`.
if (!ifStale) rmSync(dist, { recursive: true, force: true });
console.error(`build: compiling src/ and db/ to dist/ (${reason})`);
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error(`build: tsc failed (exit ${result.status ?? result.signal})`);
  process.exit(1);
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.error(`build: dist/ built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
