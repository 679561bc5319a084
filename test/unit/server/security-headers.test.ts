import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import { securityHeaders } from '../../../src/server/security-headers.js';

test('helmet’s headers on every answer (404s included); no Content-Security-Policy where a route sends its own', async () => {
  const fastify = Fastify();
  fastify.addHook('onRequest', securityHeaders({ contentSecurityPolicy: { directives: { 'connect-src': ["'self'", 'ws:'] } } }));
  fastify.get('/page', async () => 'page');
  fastify.get('/own', { config: { ownContentSecurityPolicy: true } }, async () => 'own');
  try {
    for (let i = 0; i < 2; i++) {
      const page = await fastify.inject('/page');
      const own = await fastify.inject('/own');
      const missing = await fastify.inject('/missing');
      assert.match(String(page.headers['content-security-policy']), /connect-src 'self' ws:/);
      assert.match(String(missing.headers['content-security-policy']), /default-src 'self'/);
      assert.equal(own.headers['content-security-policy'], undefined);
      for (const answer of [page, own, missing]) {
        assert.equal(answer.headers['x-content-type-options'], 'nosniff');
        assert.match(String(answer.headers['strict-transport-security']), /max-age=/);
        assert.equal(answer.headers['x-powered-by'], undefined);
      }
    }
  } finally {
    await fastify.close();
  }
});
