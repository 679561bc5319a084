import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestGateway } from '../helpers/gateway.js';
import { wsClient } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { spawnGateway } from '../helpers/process.js';
import { SignalRecorder } from '../helpers/signals.js';
import { createTestDatabase, realPostgresUrl, realRedisUrl, stackName, tempDir, testRedisEnv } from '../helpers/services.js';

const PUBLISHED = 'sibyl_signals_published_total{strategy="direction-1d"}';
const LEASE_MS = 3_000;

/**
 * Two gateway instances sharing PostgreSQL and Redis. Instance A is a separate process, so it can be
 * killed (SIGKILL: no shutdown, no lease release); instance B runs in this process. Needs the real
 * services: two processes cannot share an embedded database, and without Redis there is no second
 * instance to coordinate with.
 */
describe(
  `live signals across instances (${stackName})`,
  { skip: !(realPostgresUrl && realRedisUrl) && 'needs DATABASE_URL and REDIS_URL' },
  () => {
    test('a client on B gets what A’s monitor computed; when A is killed, B takes the monitor over within 15 s and signals go on', async () => {
      const database = await createTestDatabase();
      const redis = testRedisEnv(); // one key prefix: the same deployment
      const common = { ...redis, SYNTHETIC_TICK_MS: '400', SIGNALS_INTERVAL_MS: '0', SIGNALS_LEASE_MS: String(LEASE_MS) };
      const dataA = tempDir();
      const a = spawnGateway({ ...database.env, ...common, DATA_DIR: dataA.dir, LOG_LEVEL: 'info' }, { timeoutMs: 60_000 });
      let b: Awaited<ReturnType<typeof startTestGateway>> | undefined;
      const client = { dispose: async () => undefined } as { dispose: () => Promise<void> | void };
      try {
        const { url: urlA } = await a.ready;
        const deadline = Date.now() + 10_000;
        while (!a.logs.some((l) => String(l.msg).includes('this instance runs the monitor')) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        assert.ok(
          a.logs.some((l) => String(l.msg).includes('this instance runs the monitor')),
          'A, started first, runs the monitor',
        );

        b = await startTestGateway(common, { database });
        assert.equal(b.gateway.signals.monitor.running, false, 'B waits: A holds the lease');
        const ws = wsClient(b.url);
        client.dispose = () => ws.dispose();
        const onB = new SignalRecorder(ws, { symbols: ['AAPL', 'MSFT'] });
        await onB.until((r) => r.ticks().length >= 2, 30_000, '2 ticks on B');
        assert.ok((await metricValue(urlA, PUBLISHED)) > 0, 'A published');
        assert.equal(await metricValue(b.url, PUBLISHED), 0, 'B published nothing: what its client got came from A over Redis');

        a.kill('SIGKILL');
        await a.exited;
        const killedAt = Date.now();
        await onB.until((r) => r.messages.some((m) => Date.parse(m.asOf) > killedAt), 20_000, 'a signal made after A died');
        const takeoverMs = Date.now() - killedAt;
        assert.ok(takeoverMs < 15_000, `signals resumed ${takeoverMs} ms after A died`);
        assert.equal(b.gateway.signals.monitor.running, true);
        assert.ok((await metricValue(b.url, PUBLISHED)) > 0, 'B now publishes');
        // Across the takeover, each symbol's signals still move forward one bar at a time, never repeating.
        for (const symbol of ['AAPL', 'MSFT']) {
          const times = onB.messages.filter((m) => m.symbol === symbol).map((m) => Date.parse(m.asOf));
          for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, `${symbol}: ${times[i - 1]} then ${times[i]}`);
        }
        onB.dispose();
      } finally {
        a.kill('SIGKILL');
        await client.dispose();
        await b?.gateway.stop();
        await database.drop();
        dataA.remove();
      }
    });
  },
);
