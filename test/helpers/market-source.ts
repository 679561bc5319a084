import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { postQuery } from './graphql.js';
import { projectRoot, spawnGateway, type GatewayProcess } from './process.js';
import type { TestDatabase } from './services.js';

/**
 * The path a new user takes (issue 18): start the gateway on an empty database (it serves the synthetic
 * market and records predictions, whose outcomes resolve as the market ticks), stop it, import real CSVs
 * with `npm run import`, then start it again. These helpers run the first two steps as processes; the
 * tests start the gateway again and look at what it serves.
 */
const run = promisify(execFile);
const silent = createLogger({ level: 'silent', format: 'json' });

export const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
export const IMPORTED_SYMBOLS = ['AAPL', 'MSFT', 'JPM'] as const;
/** The last bar of every file in ../shared/data/market/daily_adjusted. */
export const IMPORTED_LAST_BAR = new Date('2021-04-21T00:00:00Z');

/** Why the path cannot run here (no market data), or undefined. */
export function marketDataMissing(): string | undefined {
  const file = path.join(marketData, 'daily_adjusted', 'DA-AAPL-T-2021-04-21.csv');
  return existsSync(file) ? undefined : `market data not found: looked for ${file} (set SIBYL_MARKET_DATA)`;
}

/** Settings that make the synthetic run record and resolve predictions within seconds. */
export const FAST_SYNTHETIC_ENV = {
  SYNTHETIC_TICK_MS: '500',
  OUTCOMES_INTERVAL_MS: '500',
  HISTORY_FLUSH_INTERVAL_MS: '50',
  SIGNALS_INTERVAL_MS: '0',
};

export interface MarketRows {
  readonly market: string;
  readonly rows: number;
  readonly resolved: number;
  readonly latest: Date;
}

/** Recorded predictions per market, read directly (the gateway must not be running on PGlite). */
export async function rowsPerMarket(database: TestDatabase): Promise<MarketRows[]> {
  const direct = await openDatabase(database.settings, silent);
  try {
    const { rows } = await sql<MarketRows>`
      select h.market_source as market, count(*)::int as rows, count(o.realized_return)::int as resolved, max(h.time) as latest
      from prediction_history h
      left join prediction_outcomes o
        on o.symbol = h.symbol and o.strategy = h.strategy and o.model_version = h.model_version
       and o.market_source = h.market_source and o.time = h.time
      group by 1 order by 1`.execute(direct.db);
    return rows;
  } finally {
    await direct.close();
  }
}

/**
 * Step 1: a gateway on the empty database serves the synthetic market; predictions are asked for until
 * the outcome job has resolved some of them (modelMetrics says so), then it stops with SIGTERM.
 */
export async function runSyntheticGateway(env: Record<string, string>, deadlineMs = 120_000): Promise<number> {
  const gateway = spawnGateway({ ...env, ...FAST_SYNTHETIC_ENV }, { timeoutMs: 300_000 });
  // A start that fails is reported as such (spawnGateway has killed the process), not as a bad exit.
  const { url } = await gateway.ready;
  try {
    const stop = Date.now() + deadlineMs;
    for (;;) {
      await postQuery(url, `{ predictions(symbols: ["AAPL", "MSFT", "JPM"]) { asOf } }`);
      const metrics = await postQuery<{ modelMetrics: { sampleSize: number } }>(
        url,
        `{ modelMetrics(strategy: "direction-1d") { sampleSize } }`,
      );
      const resolved = metrics.data?.modelMetrics.sampleSize ?? 0;
      if (resolved >= 6) return resolved;
      if (Date.now() > stop) throw new Error(`the synthetic run resolved ${resolved} predictions in ${deadlineMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await stopGateway(gateway);
  }
}

/** Step 2: `npm run import -- <a few real CSVs>` against the same database, as a process. */
export async function importRealBars(env: Record<string, string>): Promise<string> {
  const files = IMPORTED_SYMBOLS.map((symbol) => path.join(marketData, 'daily_adjusted', `DA-${symbol}-T-2021-04-21.csv`));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/import.ts', ...files], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
  });
  return stdout;
}

/** SIGTERM and its exit; a gateway that already exited (killed by a failed start) is left as it is. */
export async function stopGateway(gateway: GatewayProcess): Promise<void> {
  if (gateway.child.exitCode !== null || gateway.child.signalCode !== null) return;
  gateway.kill('SIGTERM');
  const { code, signal } = await gateway.exited;
  if (code !== 0) throw new Error(`gateway exited with ${code ?? signal}\n${gateway.stderr()}`);
}
