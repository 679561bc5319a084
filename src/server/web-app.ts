import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from '../infra/logger/logger.js';
import { EXPLORER_NOT_BUILT, EXPLORER_PATH, explorerIndex } from './explorer.js';

/**
 * Serves the web build (web/, built by Vite into `dir`): the reference web app at `/` when `app`, the
 * built-in GraphQL explorer at `/explorer/` when `explorer` (EXPLORER is not `off`), and their shared
 * hashed assets. GraphQL, health and metrics keep their own routes: fastify matches those exact paths
 * before the static wildcard.
 *
 * Without a build the gateway still starts and both pages say how to make one, since the API does not
 * need them.
 */
export function webApp(options: { dir: string; app: boolean; explorer: boolean }, logger: Logger): FastifyPluginAsync {
  const { dir } = options;
  return async (fastify) => {
    if (options.explorer) {
      fastify.get('/explorer', async (_request, reply) => reply.redirect(EXPLORER_PATH, 301));
    }
    const builtApp = existsSync(path.join(dir, 'index.html'));
    const builtExplorer = existsSync(explorerIndex(dir));
    if ((options.app && !builtApp) || (options.explorer && !builtExplorer)) {
      logger.warn({ dir }, 'web build missing: `/` and `/explorer/` explain how to build it (npm run web:build)');
    }
    if (options.app && !builtApp) fastify.get('/', notBuilt(NOT_BUILT));
    if (options.explorer && !builtExplorer) fastify.get(EXPLORER_PATH, notBuilt(EXPLORER_NOT_BUILT));
    if (!builtApp && !builtExplorer) return;
    await fastify.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: 'index.html',
      // One build holds both pages: serve only the ones configured (and the assets they share).
      allowedPath: (pathname) => pathname.startsWith('/assets/') || (pathname.startsWith(EXPLORER_PATH) ? options.explorer : options.app),
      // Vite names assets by content hash, so they never change; the pages themselves must be
      // revalidated to pick up a new build.
      setHeaders(reply, filePath) {
        const immutable = filePath.startsWith(path.join(dir, 'assets') + path.sep);
        reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  };
}

function notBuilt(page: string) {
  return async (_request: unknown, reply: FastifyReply) => {
    reply.code(503).type('text/html; charset=utf-8');
    return page;
  };
}

const NOT_BUILT = `<!doctype html>
<meta charset="utf-8"><title>Sibyl: web app not built</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The web app is not built</h1>
<p>The gateway is running: the API is at <a href="/graphql">/graphql</a>.</p>
<p>To build the web app, run <code>npm run web:build</code> (or just <code>npm start</code>, which builds it when
<code>web/dist</code> is missing or older than <code>web/src</code>), then reload this page.
Set <code>WEB_APP=false</code> to serve no page here.</p>
</body>`;
