import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { ApiKeysRepository, ApiKeysService } from '../../src/modules/access/index.js';
import { AuditLog } from '../../src/modules/audit/index.js';
import { postQuery, wsClient, wsExecute } from '../helpers/graphql.js';
import { createTestDatabase, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

describe(`request logs name the operation and role, never the key (${stackName})`, () => {
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  let database: TestDatabase;
  let gateway: RunningGateway;
  let key: string;
  before(async () => {
    database = await createTestDatabase();
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw += chunk.toString();
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const config = loadConfig({ PORT: '0', NODE_ENV: 'test', AUTH_MODE: 'apikey', LOG_LEVEL: 'info', ...database.env, ...testRedisEnv() });
    gateway = await startGateway(config, createLogger({ level: 'info', format: 'json', destination }));
    const keys = new ApiKeysService({ repository: new ApiKeysRepository(gateway.database.db), audit: new AuditLog(gateway.database.db) });
    key = (await keys.create({ name: 'logs', role: 'viewer', actor: 'test' })).key;
  });
  after(async () => {
    await gateway.stop();
    await database.drop();
  });

  test('HTTP and WebSocket operations are logged with request id, operation, role and duration', async () => {
    const url = `http://127.0.0.1:${gateway.port}`;
    await postQuery(url, 'query Cards { strategies { name } }', undefined, {
      authorization: `Bearer ${key}`,
      'x-request-id': 'log-test-1',
    });
    await postQuery(url, 'query Cards { strategies { name } }', undefined, { authorization: `Bearer ${key}x` });
    const client = wsClient(url, { connectionParams: { authorization: `Bearer ${key}` } });
    try {
      await wsExecute(client, 'query Live { strategies { name } }');
    } finally {
      await client.dispose();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const http = lines.find((l) => l.msg === 'request' && l.reqId === 'log-test-1');
    assert.ok(http, 'no request line');
    assert.equal(http.operation, 'Cards');
    assert.equal(http.role, 'viewer');
    assert.equal(typeof http.durationMs, 'number');
    const refused = lines.find((l) => l.msg === 'request' && l.status === 401);
    assert.deepEqual(refused?.errorCodes, ['UNAUTHENTICATED']);
    const ws = lines.find((l) => l.msg === 'graphql operation' && l.operation === 'Live');
    assert.ok(ws, 'no ws operation line');
    assert.equal(ws.role, 'viewer');
    assert.match(String(ws.reqId), /\//);
    assert.ok(!raw.includes(key.slice(4)), 'a key reached the log');
  });
});
