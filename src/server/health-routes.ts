import type { FastifyPluginAsync } from 'fastify';
import { createRateLimiter, type RateLimiter } from '../infra/limits/rate-limiter.js';
import type { HealthService } from '../modules/health/index.js';
import { rateHeaders } from './admission.js';

export interface HealthRoutesOptions {
  health: Pick<HealthService, 'report'>;
  isProduction: boolean;
  /** Requests per second per client address, for both paths together. */
  perSecond: number;
  /** Tests hand in a failing one; otherwise an in-process limiter is made. */
  limiter?: Pick<RateLimiter, 'consume'>;
}

/**
 * `GET /health/live` and `GET /health/ready`, with a limit of their own per client address: anyone may
 * call them, often, before any credential is checked. The limiter is in-process on purpose: health is
 * a fact of this instance, and a probe must not depend on Redis to be answered. When the limiter
 * itself fails, the request is refused (the limit fails closed).
 */
export function healthRoutes(options: HealthRoutesOptions): FastifyPluginAsync {
  const limiter = options.limiter ?? createRateLimiter({ points: options.perSecond, windowSeconds: 1, keyPrefix: 'health:' });
  return async (fastify) => {
    fastify.addHook('onRequest', async (request, reply) => {
      let refusal: { retryAfter: number; headers: Record<string, string> } | undefined;
      try {
        const rate = await limiter.consume(`ip:${request.ip}`, 1);
        if (!rate.allowed) refusal = { retryAfter: rate.resetSeconds, headers: rateHeaders(rate, true) };
      } catch (error) {
        request.log.warn({ err: { message: (error as Error).message } }, 'health rate limiter failed; refusing the request');
        refusal = { retryAfter: 1, headers: { 'retry-after': '1' } };
      }
      if (refusal) {
        return reply
          .code(429)
          .headers(refusal.headers)
          .send({
            error: `Too many health requests from this address (at most ${options.perSecond} per second); retry in ${refusal.retryAfter} s`,
          });
      }
    });

    fastify.get('/health/live', async () => ({ status: 'ok' }));
    fastify.get('/health/ready', async (_request, reply) => {
      const report = await options.health.report();
      reply.code(report.ready ? 200 : 503);
      // Public: in production only names and states (details may name hosts, paths, versions; analysts
      // see them through the `health` query).
      const components = options.isProduction ? report.components.map(({ name, status }) => ({ name, status })) : report.components;
      return { status: report.status, version: report.version, components };
    });
  };
}
