import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { HealthDocument } from '../generated/graphql.js';
import { execute } from '../helpers/graphql.js';
import { childPids, spawnGateway } from '../helpers/process.js';
import { createTestDatabase, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });

/** Rows in prediction_history, read directly once the gateway has exited. */
async function storedHistoryRows(database: TestDatabase): Promise<number> {
  const direct = await openDatabase(database.settings, logger);
  try {
    const stored = await direct.db
      .selectFrom('prediction_history')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(stored.n);
  } finally {
    await direct.close();
  }
}

describe(`the gateway process (${stackName})`, () => {
  // How fast it starts is a benchmark figure (bench/startup), not something a test on a busy machine can assert.
  test('starts on a fresh database, stops on SIGTERM with 0, and keeps its data across restarts', async () => {
    const database = await createTestDatabase();
    const env = { ...database.env, ...testRedisEnv() };
    const spawned: Array<ReturnType<typeof spawnGateway>> = [];
    try {
      const first = spawnGateway(env);
      spawned.push(first);
      const { url } = await first.ready;
      const health = await execute(url, HealthDocument);
      assert.equal(health.data?.health.status, 'ok');
      assert.ok(first.logs.some((l) => String(l.msg).startsWith('database migrated')));
      first.kill('SIGTERM');
      assert.deepEqual(await first.exited, { code: 0, signal: null });

      // Between runs, write a row the way an operator's tool would.
      const direct = await openDatabase(database.settings, logger);
      await direct.db.insertInto('audit_log').values({ actor: 'test', action: 'between-runs', subject: 'x', detail: '{}' }).execute();
      await direct.close();

      const second = spawnGateway(env);
      spawned.push(second);
      const { url: url2 } = await second.ready;
      assert.ok(
        second.logs.some((l) => l.msg === 'database schema up to date'),
        'second start must not migrate again',
      );
      assert.equal((await execute(url2, HealthDocument)).data?.health.status, 'ok');
      second.kill('SIGTERM');
      assert.equal((await second.exited).code, 0);

      const after = await openDatabase(database.settings, logger);
      const rows = await after.db.selectFrom('audit_log').select('action').execute();
      await after.close();
      // The first start also recorded each strategy's default model version (audited once, not per start)
      // and the promotion policy's first verdict on each strategy (hold: no shadow).
      assert.deepEqual(
        rows.filter((r) => !r.action.startsWith('model.') && !r.action.startsWith('promotion.')),
        [{ action: 'between-runs' }],
      );
      assert.equal(rows.filter((r) => r.action === 'model.default').length, 2);
    } finally {
      for (const gateway of spawned) if (gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.kill('SIGKILL');
      await database.drop();
    }
  });

  test('SIGTERM with a query in flight and a WebSocket open: the query completes, the socket gets 1001, exit 0', async () => {
    const database = await createTestDatabase();
    let gateway: ReturnType<typeof spawnGateway> | undefined;
    try {
      gateway = spawnGateway({ ...database.env, ...testRedisEnv() });
      const { port, url } = await gateway.ready;

      const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      socket.send(JSON.stringify({ type: 'connection_init' }));
      await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
      const socketClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

      // An HTTP request whose body is still arriving when the signal lands is, by any definition, in flight.
      const body = JSON.stringify({ query: '{ health { status } }' });
      const raw = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => raw.once('connect', resolve));
      let response = '';
      raw.on('data', (chunk) => (response += chunk.toString()));
      const responded = new Promise((resolve) => raw.once('end', resolve));
      raw.write(
        `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      raw.write(body.slice(0, 10));
      await new Promise((resolve) => setTimeout(resolve, 100));

      gateway.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 200));
      raw.write(body.slice(10));
      await responded;

      assert.match(response, /^HTTP\/1.1 200/);
      assert.match(response, /"status":"(ok|draining)"/);
      assert.equal(await socketClosed, 1001);
      assert.deepEqual(await gateway.exited, { code: 0, signal: null });
      assert.ok(gateway.logs.some((l) => l.msg === 'shutdown complete'));
    } finally {
      if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.kill('SIGKILL');
      await database.drop();
    }
  });

  test('production mode: SIGTERM flushes the history rows still buffered, exit 0 (Apollo does not re-send the signal)', async () => {
    const database = await createTestDatabase();
    let gateway: ReturnType<typeof spawnGateway> | undefined;
    try {
      // No client needed: the monitor predicts the watchlist on every synthetic tick, and every
      // prediction is a history row. The long flush interval keeps them in the buffer until SIGTERM.
      gateway = spawnGateway({
        ...database.env,
        ...testRedisEnv(),
        NODE_ENV: 'production',
        AUTH_MODE: 'apikey',
        SYNTHETIC_TICK_MS: '150',
        SIGNALS_WATCHLIST: 'AAPL,MSFT',
        HISTORY_FLUSH_INTERVAL_MS: '60000',
      });
      await gateway.ready;
      const deadline = Date.now() + 20_000;
      while (!gateway.logs.some((l) => l.msg === 'signals monitor: this instance runs the monitor') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // several ticks' rows, all still buffered
      gateway.kill('SIGTERM');
      const { code } = await gateway.exited;
      const messages = gateway.logs.map((l) => l.msg);
      assert.ok(!messages.includes('second signal: exiting now'), 'one SIGTERM is one shutdown');
      assert.equal(code, 0, `exit code; logs: ${JSON.stringify(gateway.logs.slice(-5))}`);
      const account = gateway.logs.find((l) => l.msg === 'history writer closed');
      assert.ok(account, 'the history writer closed before exit');
      assert.ok((account.acceptedRows as number) >= 4, `rows were recorded (${String(account.acceptedRows)})`);
      assert.equal(account.writtenRows, account.acceptedRows, 'every accepted row written by the final flush');

      assert.equal(await storedHistoryRows(database), account.acceptedRows);
    } finally {
      if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.kill('SIGKILL');
      await database.drop();
    }
  });

  describe('under `npm start` (both at once: each waits on its own processes)', { concurrency: true }, () => {
    /** Whether anything still accepts connections on `port`. */
    const listening = (port: number) =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), resolve(true)));
        socket.once('error', () => resolve(false));
      });

    /**
     * `npm start` on a fresh database with signals recorded every 150 ms and kept in the history buffer;
     * `signal(npm, node)` stops it. Asserts what a process manager relies on: npm exits 0 (it exits with
     * its child's code, so node exited 0) within the shutdown budget, node is gone, the port is free and
     * every accepted history row is stored.
     */
    const PROCESS_EXIT_MS = 1_000;
    async function stopsCleanly(signal: (npm: number, node: number, gateway: ReturnType<typeof spawnGateway>) => Promise<void>) {
      const budgetMs = 3_000;
      const database = await createTestDatabase();
      let gateway: ReturnType<typeof spawnGateway> | undefined;
      try {
        gateway = spawnGateway(
          {
            ...database.env,
            ...testRedisEnv(),
            SYNTHETIC_TICK_MS: '150',
            SIGNALS_WATCHLIST: 'AAPL',
            HISTORY_FLUSH_INTERVAL_MS: '60000',
            SHUTDOWN_TIMEOUT_MS: String(budgetMs),
          },
          { viaNpm: true },
        );
        const { port } = await gateway.ready;
        const [node] = childPids(gateway.child.pid!);
        assert.ok(node, 'npm runs node as its direct child (the start script execs it)');
        const deadline = Date.now() + 20_000;
        while (!gateway.logs.some((l) => l.msg === 'signals monitor: this instance runs the monitor') && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        await new Promise((resolve) => setTimeout(resolve, 400)); // a few ticks' rows, still buffered
        const started = performance.now();
        await signal(gateway.child.pid!, node, gateway);
        const { code } = await gateway.exited;
        const stopMs = performance.now() - started;
        assert.equal(code, 0, `npm's exit code; logs: ${JSON.stringify(gateway.logs.slice(-5))}`);
        // Exit code 0 says the gateway finished its shutdown within SHUTDOWN_TIMEOUT_MS by its own clock (past
        // it, it exits 1); seen from here the processes' own exit (node's teardown, then npm's) comes on top,
        // hundreds of milliseconds on a loaded machine.
        assert.ok(
          stopMs < budgetMs + PROCESS_EXIT_MS,
          `stopped in ${Math.round(stopMs)} ms, budget ${budgetMs} ms + ${PROCESS_EXIT_MS} ms`,
        );
        assert.throws(() => process.kill(node, 0), { code: 'ESRCH' }, 'node is gone, not orphaned');
        assert.equal(await listening(port), false, `port ${port} still accepts connections after npm exited`);
        const messages = gateway.logs.map((l) => l.msg);
        assert.ok(!messages.includes('second signal: exiting now'), 'one stop request is one shutdown');
        const account = gateway.logs.find((l) => l.msg === 'history writer closed');
        assert.ok(account, 'the gateway shut down (its history writer closed)');
        assert.ok((account.acceptedRows as number) > 0, 'rows were recorded');
        assert.equal(account.writtenRows, account.acceptedRows, 'every accepted row written by the final flush');
        assert.equal(await storedHistoryRows(database), account.acceptedRows);
        return gateway;
      } finally {
        if (gateway && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.kill('SIGKILL');
        await database.drop();
      }
    }

    test('SIGTERM to the npm process alone stops the gateway: exit 0 within the budget, port free, every accepted history row stored', async () => {
      // What a process manager does: signal the process it started (npm), nothing else. Before the start
      // script exec'd node, npm and its shell exited and the gateway kept serving with parent 1.
      await stopsCleanly(async (npm) => void process.kill(npm, 'SIGTERM'));
    });

    test('a signal that reaches node and npm both (Ctrl-C, kill -- -PGID) is one shutdown, not "second signal: exit 1"', async () => {
      let held: net.Socket | undefined;
      try {
        const gateway = await stopsCleanly(async (npm, node, gateway) => {
          // A WebSocket that never answers the close handshake keeps the drain going, so npm's forwarded
          // copy arrives while node is still shutting down, as it does with a busy gateway.
          const { port } = await gateway.ready;
          held = net.connect(port, '127.0.0.1');
          held.on('data', () => undefined);
          held.write(
            'GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n',
          );
          await new Promise((resolve) => held!.once('data', resolve)); // 101 Switching Protocols
          // The group's copies, in the order a terminal's Ctrl-C produces them: node's own, then npm's forward.
          process.kill(node, 'SIGTERM');
          const deadline = Date.now() + 5_000;
          while (!gateway.logs.some((l) => l.msg === 'shutting down: draining connections') && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 10));
          process.kill(npm, 'SIGTERM');
        });
        assert.ok(
          gateway.logs.some((l) => String(l.msg).startsWith('the same signal again')),
          "npm's forwarded copy reached node while it drained",
        );
      } finally {
        held?.destroy();
      }
    });
  });

  test('bad environment variables exit 1 and name every bad variable', async () => {
    const gateway = spawnGateway({ PORT: 'abc', DATABASE_URL: 'not-a-url', REDIS_URL: 'http://localhost' });
    const { code } = await gateway.exited;
    assert.equal(code, 1);
    const stderr = gateway.stderr();
    for (const name of ['PORT', 'DATABASE_URL', 'REDIS_URL']) assert.match(stderr, new RegExp(`${name}: `));
  });

  test('an unreachable PostgreSQL exits 1 with a clear message instead of hanging', async () => {
    const gateway = spawnGateway({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    const { code } = await gateway.exited;
    assert.equal(code, 1);
    const fatal = gateway.logs.find((l) => l.level === 60);
    assert.match(String(fatal?.msg), /cannot reach PostgreSQL at postgres:\/\/nobody@127\.0\.0\.1:1\/none/);
  });

  test('an unreachable Redis exits 1 with a clear message', async () => {
    const database = await createTestDatabase();
    try {
      const gateway = spawnGateway({ ...database.env, REDIS_URL: 'redis://127.0.0.1:1' });
      const { code } = await gateway.exited;
      assert.equal(code, 1);
      const fatal = gateway.logs.find((l) => l.level === 60);
      assert.match(String(fatal?.msg), /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
    } finally {
      await database.drop();
    }
  });
});
