import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { DEFAULT_SYNTHETIC_UNIVERSE } from '../../src/infra/market-data/synthetic.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { PredictionsDocument } from '../generated/graphql.js';
import { execute } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { PrivatePostgres, findPostgres, type PostgresBinaries } from '../helpers/private-postgres.js';
import { projectRoot, spawnGateway, type GatewayProcess } from '../helpers/process.js';

/**
 * Acceptance: PostgreSQL stopped while predictions are being served, then restarted → every accepted
 * history row is in `prediction_history` afterwards, exactly once, and the process never crashed.
 *
 * The rule on shared machines: a test stops and starts only services it started itself, never the
 * machine's PostgreSQL on 5432. So this file runs its OWN throw-away PostgreSQL server
 * (test/helpers/private-postgres.ts says how, and when the suite is skipped instead).
 *
 * The gateway runs in this process through the real composition root (`loadConfig` + `startGateway`),
 * with no bars stored (so it serves the synthetic market, which needs no database), a 100-row history
 * buffer (so an outage of a few hundred rows spills to DATA_DIR/history-spill), a 100 ms synthetic tick
 * (new bars, hence new history keys, keep coming) and the market cache off (every round sees the newest bar).
 */

/**
 * A TCP relay in front of PostgreSQL that can go silent: while `hang` is on, bytes in either direction
 * are dropped (not buffered), so the gateway sees a database that accepts connections and queries and
 * never answers — a network partition or a frozen server, as opposed to one that refuses connections.
 */
class HangingRelay {
  hang = false;
  readonly #sockets = new Set<net.Socket>();
  readonly #server = net.createServer((client) => this.#relay(client));
  port = 0;

  static async open(upstreamPort: number): Promise<HangingRelay> {
    const relay = new HangingRelay(upstreamPort);
    await new Promise<void>((resolve, reject) => relay.#server.once('error', reject).listen(0, '127.0.0.1', resolve));
    relay.port = (relay.#server.address() as net.AddressInfo).port;
    return relay;
  }

  private constructor(private readonly upstreamPort: number) {}

  #relay(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk) => void (this.hang || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (this.hang || client.write(chunk)));
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

const SYMBOLS = DEFAULT_SYNTHETIC_UNIVERSE.slice(0, 10);
const STRATEGIES = ['direction-1d', 'direction-5d'] as const;
/** Served keys during one outage before we stop serving: well past HISTORY_MAX_BUFFER_ROWS (100). */
const OUTAGE_KEYS = 200;

const keyOf = (symbol: string, strategy: string, version: string, asOf: string) => `${symbol}|${strategy}|${version}|${asOf}`;

/** Polls `probe` until it returns a value other than undefined; fails with `what` (and the last detail) after `timeoutMs`. */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  detail: () => unknown = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(detail())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function spillFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((name) => /^spill-\d+-\d+-\d+\.ndjson$/.test(name)) : [];
}

/** Every key in the spill files, as the served keys are spelled. */
function spilledKeys(dir: string): string[] {
  return spillFiles(dir).flatMap((name) =>
    readFileSync(path.join(dir, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const row = JSON.parse(line) as { symbol: string; strategy: string; modelVersion: string; time: number };
        return keyOf(row.symbol, row.strategy, row.modelVersion, new Date(row.time).toISOString());
      }),
  );
}

interface Readiness {
  code: number;
  status: string;
  components: Record<string, string>;
}

async function readiness(url: string): Promise<Readiness> {
  const response = await fetch(`${url}/health/ready`);
  const body = (await response.json()) as { status: string; components: Array<{ name: string; status: string }> };
  return { code: response.status, status: body.status, components: Object.fromEntries(body.components.map((c) => [c.name, c.status])) };
}

const found = findPostgres();
const skip = typeof found === 'string' ? `history fault test needs a private PostgreSQL: ${found}` : false;

describe('prediction history across a PostgreSQL outage (private PostgreSQL started by this test)', { skip }, () => {
  let postgres: PrivatePostgres;
  let dataDir: string;
  let config: Config;
  let first: RunningGateway | undefined;
  let second: RunningGateway | undefined;
  /** Every key any response contained, across all phases. */
  const served = new Set<string>();
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);
  let phaseOneDone = false;
  let relay: HangingRelay | undefined;
  let child: GatewayProcess | undefined;
  let hangDataDir: string | undefined;

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    postgres = new PrivatePostgres(found as PostgresBinaries);
    dataDir = mkdtempSync(path.join(tmpdir(), 'sibyl-fault-data-'));
    await postgres.init();
    await postgres.start();
    await postgres.createDatabase();
    config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      LOG_LEVEL: process.env.SIBYL_TEST_LOG_LEVEL ?? 'silent', // e.g. SIBYL_TEST_LOG_LEVEL=info to see the writer's log lines
      LOG_FORMAT: 'json',
      DATABASE_URL: postgres.url,
      DATABASE_POOL_MAX: '4',
      DATA_DIR: dataDir,
      MODELS_DIR: path.join(projectRoot, 'models'),
      HISTORY_FLUSH_INTERVAL_MS: '50',
      HISTORY_MAX_BUFFER_ROWS: '100',
      SYNTHETIC_TICK_MS: '100',
      MARKET_CACHE_TTL_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '5000',
    });
  });

  after(async () => {
    try {
      // Stopping a gateway twice is the same promise; both are no-ops if the tests already stopped them.
      await first?.stop();
      await second?.stop();
    } finally {
      if (child && child.child.exitCode === null && child.child.signalCode === null) {
        child.kill('SIGKILL');
        await child.exited;
      }
      await relay?.close();
      if (hangDataDir) rmSync(hangDataDir, { recursive: true, force: true });
      await postgres?.destroy();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    }
  });

  const logger = () => createLogger({ level: config.log.level, format: 'json' });
  const spillDir = () => config.history.spillDir;

  /** One request per strategy for every symbol; every prediction must be served. Returns the keys seen. */
  async function serveRound(gateway: RunningGateway | string, into: Set<string> = served): Promise<string[]> {
    const url = typeof gateway === 'string' ? gateway : `http://127.0.0.1:${gateway.port}`;
    const responses = await Promise.all(
      STRATEGIES.map((strategy) => execute(url, PredictionsDocument, { symbols: [...SYMBOLS], strategy })),
    );
    const keys: string[] = [];
    for (const { status, data, errors } of responses) {
      assert.equal(status, 200);
      assert.equal(errors, undefined, JSON.stringify(errors));
      assert.equal(data!.predictions.length, SYMBOLS.length);
      for (const p of data!.predictions) {
        assert.ok(p, 'every symbol is predicted');
        const key = keyOf(p.symbol, p.strategy, p.model.version, p.asOf);
        keys.push(key);
        into.add(key);
      }
    }
    return keys;
  }

  /** Waits for the synthetic ticker to add a bar newer than the newest one now (so the next round has new keys). */
  async function nextBar(gateway: RunningGateway): Promise<void> {
    const newest = async () => (await gateway.market.fetchBars([SYMBOLS[0]!], { lookback: 1 })).get(SYMBOLS[0]!)!.at(-1)!.time.getTime();
    const now = await newest();
    await waitFor('a new synthetic bar', async () => ((await newest()) > now ? true : undefined), 2_000);
  }

  async function storedKeys(database = 'sibyl_fault'): Promise<string[]> {
    const rows = await postgres.query<{ symbol: string; strategy: string; model_version: string; time: Date }>(
      'select symbol, strategy, model_version, time from prediction_history',
      database,
    );
    return rows.map((r) => keyOf(r.symbol, r.strategy, r.model_version, r.time.toISOString()));
  }

  /** The table holds exactly `expected`: nothing missing, nothing extra, no key twice. */
  function assertExactly(stored: readonly string[], expected: ReadonlySet<string>, when: string): void {
    const set = new Set(stored);
    assert.equal(stored.length, set.size, `${when}: a key is stored twice`);
    const missing = [...expected].filter((k) => !set.has(k));
    const extra = [...set].filter((k) => !expected.has(k));
    assert.deepEqual(
      { missing: missing.slice(0, 5), extra: extra.slice(0, 5) },
      { missing: [], extra: [] },
      `${when}: ${missing.length} missing, ${extra.length} extra`,
    );
    assert.equal(set.size, expected.size);
  }

  /** The writer has caught up: writes succeed, nothing in memory, nothing on disk. */
  const caughtUp = (gateway: RunningGateway) => {
    const s = gateway.history.state;
    return s.status === 'ok' && s.bufferedRows === 0 && s.spillFiles === 0 && s.spilledRows === 0 ? s : undefined;
  };

  test(
    'PostgreSQL stopped while serving, then restarted: every accepted row is stored exactly once; the gateway never crashed',
    { timeout: 45_000 },
    async (t) => {
      const gateway = (first = await startGateway(config, logger()));
      const url = `http://127.0.0.1:${gateway.port}`;
      assert.equal(gateway.market.name, 'synthetic', 'no bars stored: the synthetic market serves');
      assert.equal(spillDir(), path.join(dataDir, 'history-spill'));

      // Before the outage: a few rounds, written normally.
      for (let i = 0; i < 3; i++) {
        await serveRound(gateway);
        await nextBar(gateway);
      }
      const beforeOutage = served.size;
      assert.equal((await readiness(url)).code, 200);

      await postgres.stop('fast');

      // During the outage: predictions keep being served (the synthetic market needs no database) until the
      // history is degraded, rows have spilled to disk, and well over a buffer's worth of new keys was served.
      let outage: Readiness | undefined;
      await waitFor(
        'an outage that degraded history and spilled rows',
        async () => {
          await serveRound(gateway);
          outage ??= await readiness(url).then((r) => (r.components.history === 'degraded' ? r : undefined));
          if (outage && spillFiles(spillDir()).length > 0 && served.size - beforeOutage >= OUTAGE_KEYS) return true;
          await nextBar(gateway);
          return undefined;
        },
        15_000,
        () => ({ served: served.size - beforeOutage, spill: spillFiles(spillDir()), state: gateway.history.state }),
      );
      // What readiness says while PostgreSQL is down: degraded, not down. Predictions keep being served
      // from the synthetic market, so the instance stays ready (200) and says what is missing: the
      // database is unreachable, history rows are buffered.
      assert.deepEqual(outage, {
        code: 200,
        status: 'degraded',
        components: { database: 'degraded', models: 'ok', market: 'ok', history: 'degraded' },
      });
      const during = gateway.history.state;
      assert.ok(during.consecutiveFailures > 0, 'writes failed during the outage');
      assert.ok(during.spilledRows > 0 && during.spillFiles > 0, `rows spilled: ${JSON.stringify(during)}`);
      assert.ok(during.bufferedRows <= 100 + 100, `memory stays bounded: ${during.bufferedRows} rows`);
      t.diagnostic(
        `outage: /health/ready ${outage!.code} status=${outage!.status} components=${JSON.stringify(outage!.components)}; ` +
          `served ${served.size - beforeOutage} keys; ${during.spilledRows} rows in ${during.spillFiles} spill files, ${during.bufferedRows} in memory`,
      );

      await postgres.start();
      const restarted = Date.now();

      // Recovery is the writer's own retry loop (backoff from 500 ms, doubling), not a forced flush.
      await waitFor(
        'the history writer to catch up after PostgreSQL came back',
        () => caughtUp(gateway),
        30_000,
        () => gateway.history.state,
      );
      t.diagnostic(`caught up ${Date.now() - restarted} ms after PostgreSQL was back`);
      assert.deepEqual(spillFiles(spillDir()), [], 'replayed spill files are deleted');
      assertExactly(await storedKeys(), served, 'after the first outage');
      const state = gateway.history.state;
      assert.deepEqual(
        { invalid: state.invalidRows, refused: state.refusedRows, rejected: state.rejectedRows, written: state.writtenRows },
        { invalid: 0, refused: 0, rejected: 0, written: served.size },
      );
      assert.equal(await metricValue(url, 'sibyl_history_rows_written_total'), served.size);

      // Still alive and well: live, ready again, serving.
      assert.equal((await fetch(`${url}/health/live`)).status, 200);
      await waitFor('readiness to be ok again', async () => ((await readiness(url)).status === 'ok' ? true : undefined), 10_000);
      await serveRound(gateway);
      assert.deepEqual(crashes, [], 'no uncaught exception or unhandled rejection');
      phaseOneDone = true;
    },
  );

  test(
    'stopped during an outage, the gateway spills everything; a new gateway writes it all on its first flush',
    { timeout: 45_000 },
    async (t) => {
      if (!phaseOneDone) return t.skip('needs the first test to have passed');
      const gateway = first!;
      await waitFor(
        'the history writer to be caught up',
        () => caughtUp(gateway),
        10_000,
        () => gateway.history.state,
      );

      await postgres.stop('fast');
      const beforeOutage = served.size;
      await waitFor(
        'a second outage that degraded history and spilled rows',
        async () => {
          await serveRound(gateway);
          if (gateway.history.state.status === 'degraded' && spillFiles(spillDir()).length > 0 && served.size - beforeOutage >= OUTAGE_KEYS)
            return true;
          await nextBar(gateway);
          return undefined;
        },
        15_000,
        () => ({ served: served.size - beforeOutage, state: gateway.history.state }),
      );
      await nextBar(gateway);
      await serveRound(gateway); // fresh rows still in memory when shutdown starts
      assert.ok(gateway.history.state.bufferedRows > 0, 'rows in memory at shutdown');

      const stopping = Date.now();
      await gateway.stop();
      const stopMs = Date.now() - stopping;
      assert.ok(stopMs < 15_000, `stop() resolved in ${stopMs} ms`);
      const closed = gateway.history.state;
      assert.equal(closed.closed, true);
      assert.equal(closed.bufferedRows, 0, 'nothing left in memory after stop()');
      const onDisk = spilledKeys(spillDir());
      assert.equal(onDisk.length, closed.spilledRows, 'the spill files hold what the writer says it spilled');
      assert.deepEqual(crashes, []);

      await postgres.start();
      const storedBefore = await storedKeys();
      // Together, the table and the spill files hold every key served; the files hold nothing else.
      const union = new Set([...storedBefore, ...onDisk]);
      assertExactly([...union], served, 'table + spill files after shutdown during the outage');
      const missingFromTable = [...served].filter((k) => !storedBefore.includes(k)).length;
      assert.ok(missingFromTable > 0, 'the outage left rows for the next gateway to write');

      const next = (second = await startGateway(config, logger()));
      await waitFor(
        'the new gateway to write the spilled rows',
        () => caughtUp(next),
        30_000,
        () => next.history.state,
      );
      assertExactly(await storedKeys(), served, 'after the new gateway replayed the spill');
      assert.deepEqual(spillFiles(spillDir()), []);
      assert.equal(next.history.state.writtenRows, missingFromTable);
      assert.equal(await metricValue(`http://127.0.0.1:${next.port}`, 'sibyl_history_rows_written_total'), missingFromTable);
      await next.stop();
      assert.deepEqual(crashes, [], 'no uncaught exception or unhandled rejection');
      t.diagnostic(
        `second outage: stop() took ${stopMs} ms, spilled ${onDisk.length} rows; new gateway wrote ${missingFromTable}; ${served.size} keys in all`,
      );
    },
  );

  /*
   * A database that hangs (accepts connections and queries, never answers: a network partition, a frozen
   * server) rather than refusing them. Regression: the hard stop once fired at SHUTDOWN_TIMEOUT_MS + 1 s
   * while HistoryWriter.close() was still waiting 10 s for the hung write, so every row in memory was
   * lost, and pg's Pool.end() then waited forever on the stuck client. main.ts now splits the shutdown
   * budget (the writer gets 25% and then spills) and abandons a release step that hangs. The real process
   * runs (spawnGateway) behind a relay that goes silent, so the exit code is the real one.
   */
  test(
    'SIGTERM while the database hangs: every served row is stored or spilled, and the process exits 0 in time',
    { timeout: 40_000 },
    async (t) => {
      if (!postgres.running) await postgres.start();
      await postgres.createDatabase('sibyl_hang');
      relay = await HangingRelay.open(postgres.port);
      hangDataDir = mkdtempSync(path.join(tmpdir(), 'sibyl-fault-hang-'));
      child = spawnGateway({
        DATABASE_URL: `postgres://postgres@127.0.0.1:${relay.port}/sibyl_hang`,
        DATA_DIR: hangDataDir,
        HISTORY_FLUSH_INTERVAL_MS: '50',
        HISTORY_MAX_BUFFER_ROWS: '100',
        SYNTHETIC_TICK_MS: '100',
        MARKET_CACHE_TTL_MS: '0',
      });
      const { url } = await child.ready;
      const keys = new Set<string>();
      await serveRound(url, keys);
      await waitFor(
        'the first rows to be stored',
        async () => ((await storedKeys('sibyl_hang')).length === keys.size ? true : undefined),
        10_000,
      );

      relay.hang = true;
      const beforeHang = keys.size;
      await waitFor(
        'predictions with new keys while the database hangs',
        async () => {
          await serveRound(url, keys);
          return keys.size > beforeHang ? true : undefined;
        },
        5_000,
      );

      const signalled = Date.now();
      child.kill('SIGTERM');
      const exit = await child.exited;
      const exitMs = Date.now() - signalled;
      await relay.close(); // what the relay dropped is gone, as in a partition: the hung writes never reach the server

      const kept = new Set([...(await storedKeys('sibyl_hang')), ...spilledKeys(path.join(hangDataDir, 'history-spill'))]);
      const lost = [...keys].filter((k) => !kept.has(k));
      const logged = child.logs.filter((l) => Number(l.level) >= 40).map((l) => l.msg);
      t.diagnostic(
        `database hang: SIGTERM → exit ${JSON.stringify(exit)} after ${exitMs} ms; ${keys.size} keys served, ${lost.length} neither stored nor spilled; warnings/errors: ${JSON.stringify(logged)}`,
      );
      assert.deepEqual(
        lost,
        [],
        `${lost.length} of ${keys.size} served rows lost: SIGTERM → exit ${exit.code} after ${exitMs} ms; logged: ${JSON.stringify(logged)}`,
      );
      assert.deepEqual(exit, { code: 0, signal: null }, `exit after ${exitMs} ms; logged: ${JSON.stringify(logged)}`);
      assert.ok(exitMs < 9_000, `took ${exitMs} ms, past the hard stop`);
    },
  );
});
