/**
 * Builds the reference web app (web/) into web/dist with Vite.
 *
 *   npm run web:build            always build (also `prepare`, so `npm install` / `npm ci` build it)
 *   web-build.ts --if-stale      build only when web/dist is missing or older than its sources (`prestart`)
 *
 * Vite is a development dependency: where it is not installed (`npm ci --omit=dev` with a prebuilt
 * web/dist copied in), this says so and exits 0, because the gateway serves the API without the app.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Vite from 'vite';
import { parseCli, runAsCommand, type CliIo } from './args.js';
import { logSettingsFromEnvironment } from '../config/index.js';
import { createLogger } from '../infra/logger/logger.js';

// Not loadConfig(): this runs inside `npm install`, which must not fail because the gateway's own
// settings (auth, database…) are incomplete there. Only the log settings follow the same rules.
const logger = createLogger({
  level: 'info',
  format: logSettingsFromEnvironment().format,
}).child({ component: 'web-build' });

const webRoot = fileURLToPath(new URL('../../web/', import.meta.url));
const distIndex = path.join(webRoot, 'dist', 'index.html');
/** What the build reads: a change to any of these makes web/dist stale. */
const sources = ['index.html', 'explorer', 'vite.config.ts', 'src', 'operations'].map((p) => path.join(webRoot, p));

function newestMtime(target: string): number {
  if (!existsSync(target)) return 0;
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(target).reduce((newest, name) => Math.max(newest, newestMtime(path.join(target, name))), stat.mtimeMs);
}

function isStale(): boolean {
  if (!existsSync(distIndex)) return true;
  const built = statSync(distIndex).mtimeMs;
  return sources.some((source) => newestMtime(source) > built);
}

const USAGE = `usage: npm run web:build [-- --if-stale]

Builds the reference web app (web/) into web/dist with Vite.
  --if-stale  build only when web/dist is missing or older than its sources (what \`npm start\` does first)
`;

export async function main(io: CliIo): Promise<number> {
  const parsed = parseCli({ name: 'web:build', usage: USAGE, options: { 'if-stale': { type: 'boolean' } } }, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  if (parsed.values['if-stale'] && !isStale()) return 0;
  let vite: typeof Vite;
  try {
    vite = await import('vite');
  } catch {
    logger.warn('web app: vite is not installed (npm install without dev dependencies?); the gateway serves the API without the app');
    return 0;
  }
  const started = performance.now();
  try {
    await vite.build({ configFile: path.join(webRoot, 'vite.config.ts'), logLevel: 'warn' });
  } catch (error) {
    logger.error({ err: error }, 'web app: build failed');
    return 1;
  }
  const dist = path.relative(process.cwd(), path.dirname(distIndex)) || '.';
  logger.info({ dist, ms: Math.round(performance.now() - started) }, `web app: built ${dist}`);
  return 0;
}

await runAsCommand(import.meta.url, 'web:build', main);
