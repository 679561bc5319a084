import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { PredictionsDocument } from '../generated/graphql.js';
import { execute, postQuery } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { PrivatePostgres, findPostgres, type PostgresBinaries } from '../helpers/private-postgres.js';
import { projectRoot } from '../helpers/process.js';

/**
 * Acceptance (reliability issue, market provider faults): with stored bars as the market, PostgreSQL is
 * the market-data provider. Stopping it must not stop predictions: the circuit opens, the last good bars
 * are served with `stale: true` and their real `asOf`, the breaker shows in /metrics and readiness, and
 * when PostgreSQL is back the breaker closes by itself and fresh predictions return. The database is a
 * private server this test starts and stops (never the machine's).
 */

const SYMBOLS = ['MF1', 'MF2', 'MF3', 'MF4'];
/** Stored, but never asked for before the outage: nothing stale to fall back on. */
const UNSEEN = 'MF5';
const logger = createLogger({ level: process.env.SIBYL_TEST_LOG_LEVEL ?? 'silent', format: 'json' });

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function marketComponent(url: string): Promise<string | undefined> {
  const body = (await (await fetch(`${url}/health/ready`)).json()) as { components: Array<{ name: string; status: string }> };
  return body.components.find((c) => c.name === 'market')?.status;
}

const found = findPostgres();
const skip = typeof found === 'string' ? `market fault test needs a private PostgreSQL: ${found}` : false;

describe('market data across a PostgreSQL outage (stored bars; private PostgreSQL started by this test)', { skip }, () => {
  let postgres: PrivatePostgres;
  let dataDir: string;
  let gateway: RunningGateway | undefined;
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => crashes.push(error);

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    postgres = new PrivatePostgres(found as PostgresBinaries, 'sibyl_market_fault');
    dataDir = mkdtempSync(path.join(tmpdir(), 'sibyl-market-fault-'));
    await postgres.init();
    await postgres.start();
    await postgres.createDatabase();
    const market = createSyntheticMarket({
      symbols: [...SYMBOLS, UNSEEN],
      seed: 11,
      historyBars: 130,
      startTime: new Date('2024-01-01T00:00:00Z'),
    });
    const bars: Bar[] = [...(await market.fetchBars([...SYMBOLS, UNSEEN], { lookback: 130 })).values()].flat();
    const direct = await openDatabase({ kind: 'postgres', url: postgres.url, poolMax: 2 }, logger);
    try {
      await migrateToLatest(direct.db);
      await new BarsRepository(direct.db).upsert(bars);
    } finally {
      await direct.close();
    }
  });

  after(async () => {
    try {
      await gateway?.stop();
    } finally {
      await postgres?.destroy();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    }
  });

  test('stale predictions while it is down, fresh ones after it is back, no crash', { timeout: 60_000 }, async () => {
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      LOG_LEVEL: 'silent',
      DATABASE_URL: postgres.url,
      DATABASE_POOL_MAX: '4',
      DATA_DIR: dataDir,
      MODELS_DIR: path.join(projectRoot, 'models'),
      // Every request goes to the provider: nothing hides the outage but the breaker's stale answers.
      MARKET_CACHE_TTL_MS: '0',
      MARKET_FETCH_TIMEOUT_MS: '1000',
      MARKET_BREAKER_RESET_MS: '500',
      HISTORY_FLUSH_INTERVAL_MS: '50',
    });
    gateway = await startGateway(config, logger);
    const url = `http://127.0.0.1:${gateway.port}`;
    const breaker = () => metricValue(url, 'sibyl_market_breaker_state{provider="postgres"}');

    const before = await execute(url, PredictionsDocument, { symbols: SYMBOLS });
    assert.equal(before.errors, undefined);
    assert.ok(before.data!.predictions.every((p) => p && !p.stale));
    assert.equal(await marketComponent(url), 'ok');
    assert.equal(await breaker(), 0);

    await postgres.stop('fast');

    // Enough requests to open the breaker; every one of them is answered, from the last good bars.
    for (let i = 0; i < 8; i++) {
      const during = await execute(url, PredictionsDocument, { symbols: SYMBOLS });
      assert.equal(during.status, 200);
      assert.equal(during.errors, undefined, JSON.stringify(during.errors));
      during.data!.predictions.forEach((p, n) => {
        const was = before.data!.predictions[n]!;
        assert.equal(p!.stale, true, 'marked stale');
        assert.deepEqual(
          [p!.symbol, p!.asOf, p!.probability, p!.featuresHash],
          [was.symbol, was.asOf, was.probability, was.featuresHash],
          'the real asOf and the same prediction',
        );
      });
    }
    assert.equal(await breaker(), 2, 'the breaker is open');
    // Readiness reuses its report for HEALTH_CACHE_MS: the change shows within that.
    await waitFor(
      'readiness to show the market degraded',
      async () => ((await marketComponent(url)) === 'degraded' ? true : undefined),
      5_000,
    );
    // Still serving, so still ready: degraded (200), not down (503) that would drain every instance.
    const ready = await fetch(`${url}/health/ready`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'degraded');

    // A symbol never fetched has no last good bars: it alone fails, with a code; the rest are served.
    const mixed = await execute(url, PredictionsDocument, { symbols: [SYMBOLS[0]!, UNSEEN] });
    assert.equal(mixed.status, 200);
    assert.equal(mixed.data!.predictions[0]!.stale, true);
    assert.equal(mixed.data!.predictions[1], null);
    assert.deepEqual(
      mixed.errors?.map((e) => [e.path, e.extensions?.code]),
      [[['predictions', 1], 'UNAVAILABLE']],
    );
    assert.doesNotMatch(JSON.stringify(mixed.errors), /ECONNREFUSED|postgres|select/i, 'no internals in the message');

    // Queries that need the database itself fail fast, with UNAVAILABLE and no internals.
    for (const query of [
      `{ confidenceHistory(symbol: "${SYMBOLS[0]}", bucket: "1 day") { time } }`,
      '{ modelMetrics(strategy: "direction-1d") { sampleSize } }',
    ]) {
      const started = performance.now();
      const answer = await postQuery(url, query);
      assert.equal(answer.errors?.[0]?.extensions?.code, 'UNAVAILABLE', `${query}: ${JSON.stringify(answer.errors)}`);
      assert.doesNotMatch(JSON.stringify(answer.errors), /ECONNREFUSED|select |\/src\//i);
      assert.ok(performance.now() - started < 10_000, 'fails fast rather than hanging');
    }

    await postgres.start();
    // The breaker lets a trial call through after MARKET_BREAKER_RESET_MS and closes on its success.
    const fresh = await waitFor(
      'fresh predictions after PostgreSQL came back',
      async () => {
        const result = await execute(url, PredictionsDocument, { symbols: [...SYMBOLS, UNSEEN] });
        return result.errors === undefined && result.data!.predictions.every((p) => p && !p.stale) ? result : undefined;
      },
      20_000,
    );
    assert.equal(fresh.data!.predictions.length, SYMBOLS.length + 1);
    assert.equal(await breaker(), 0);
    await waitFor('readiness to show the market ok', async () => ((await marketComponent(url)) === 'ok' ? true : undefined), 5_000);
    assert.deepEqual(crashes, [], 'no uncaught exception or unhandled rejection');
  });
});
