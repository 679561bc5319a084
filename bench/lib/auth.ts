import { createHmac } from 'node:crypto';

/**
 * Benchmarks run the gateway as deployed (NODE_ENV=production), where access control cannot be off:
 * every gateway gets these variables and every request carries {@link BENCH_AUTHORIZATION}, so JWT
 * verification is part of what is measured. Rate limiting is off: one client would exhaust any budget.
 */
const SECRET = 'sibyl-benchmark-secret-not-for-deployments-0123456789';

export const BENCH_AUTH_ENV = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, RATE_LIMIT_POINTS: '0' } as const;

/**
 * An HS256 JWT (role analyst, valid for a day: the history and explanation benchmarks need analyst),
 * signed here without I/O so the header is a constant.
 */
export const BENCH_AUTHORIZATION = `Bearer ${sign({ sub: 'bench', role: 'analyst', exp: Math.floor(Date.now() / 1000) + 86_400 })}`;

function sign(payload: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}`;
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`;
}
