import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from '../infra/logger/logger.js';

/**
 * Serves the reference web app (web/, built by Vite into `dir`) at `/`. GraphQL, health and metrics
 * keep their own routes: fastify matches those exact paths before the static wildcard.
 *
 * Without a build the gateway still starts and `/` says how to make one, since the API does not need it.
 */
export function webApp(dir: string, logger: Logger): FastifyPluginAsync {
  return async (fastify) => {
    if (!existsSync(path.join(dir, 'index.html'))) {
      logger.warn({ dir }, 'web app not built: `/` explains how to build it (npm run web:build)');
      fastify.get('/', async (_request, reply) => {
        reply.code(503).type('text/html; charset=utf-8');
        return NOT_BUILT;
      });
      return;
    }
    await fastify.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      index: 'index.html',
      // Vite names assets by content hash, so they never change; the page itself must be revalidated to
      // pick up a new build.
      setHeaders(reply, filePath) {
        const immutable = filePath.startsWith(path.join(dir, 'assets') + path.sep);
        reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
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
