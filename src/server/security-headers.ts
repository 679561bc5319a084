import type { onRequestHookHandler } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's page carries its own Content-Security-Policy: helmet's is not sent (security-headers.ts). */
    ownContentSecurityPolicy?: boolean;
  }
}

/**
 * helmet's security headers on every response (what @fastify/helmet did), with its middleware built
 * once per configuration at start-up: @fastify/helmet builds it again for every request (parsing the
 * Content-Security-Policy directives each time), which was ~2% of a warm `predictions` request
 * (docs/decisions/compiled-execution.md). Two configurations: `options`, and the same without
 * Content-Security-Policy for routes whose config sets `ownContentSecurityPolicy`. The returned hook
 * goes on the root instance (`fastify.addHook('onRequest', …)`), so every route and the 404 answer get it.
 */
export function securityHeaders(options: Readonly<HelmetOptions>): onRequestHookHandler {
  const everywhere = helmet(options);
  const withoutPolicy = helmet({ ...options, contentSecurityPolicy: false });
  return (request, reply, done) => {
    const apply = request.routeOptions.config.ownContentSecurityPolicy ? withoutPolicy : everywhere;
    apply(request.raw, reply.raw, (error) => done(error as Error | undefined));
  };
}
