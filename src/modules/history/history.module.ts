import type { Config } from '../../config/index.js';
import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import { HISTORY } from '../../infra/response-cache/inputs.js';
import type { ChangeReporter } from '../../infra/response-cache/response-cache.js';
import type { HealthCheck } from '../../shared/health.js';
import type { CloseStep, ShutdownBudget } from '../../shared/lifecycle.js';
import type { PredictionSink } from '../predictions/index.js';
import { HistoryQueryService } from './history-query.service.js';
import { HistoryReadRepository, historyRollupsOf } from './history-read.repository.js';
import { applyHistoryChunkInterval, historyChunkDays } from './history-chunks.js';
import { applyHistoryRetention } from './history-retention.js';
import { HistoryRepository } from './history.repository.js';
import { HistoryWriter } from './history.writer.js';
import { OutcomesRepository } from './outcomes.repository.js';
import { OutcomesService } from './outcomes.service.js';
import { historyOfPredictions } from './prediction-sink.js';

export interface HistoryModuleDeps {
  readonly config: Pick<Config, 'history' | 'predictions' | 'outcomes'>;
  readonly database: Database;
  readonly market: {
    /** Only to tell an unknown symbol from one with nothing recorded yet. */
    readonly provider: Pick<MarketDataProvider, 'listSymbols' | 'name'>;
    /** The market every recorded row is labelled with, and every history read defaults to. */
    readonly source: string;
    /** Realized returns for outcomes. */
    readonly forPastBars: MarketDataProvider;
  };
  readonly metrics: Pick<Metrics, 'historyRowsWrittenTotal' | 'historyBufferRows'>;
  readonly budget: ShutdownBudget;
  readonly logger: Logger;
  /** With the response cache on: every write of prediction_history (rows, outcomes) is announced as a change of `history`. */
  readonly changes?: Pick<ChangeReporter, 'writing'> | undefined;
}

export interface HistoryModule {
  readonly writer: HistoryWriter;
  /** Where the prediction service records what it serves. */
  readonly sink: PredictionSink;
  readonly queries: HistoryQueryService;
  readonly outcomes: OutcomesService;
  /** The database's own check, softened while the writer keeps rows safe (see servingWithoutDatabase). */
  readonly databaseHealth: HealthCheck;
  readonly health: HealthCheck;
  readonly closeSteps: readonly CloseStep[];
}

/** Prediction history: the write path every served prediction takes, its queries, and realized outcomes. */
export async function createHistoryModule({
  config,
  database,
  market,
  metrics,
  budget,
  logger,
  changes,
}: HistoryModuleDeps): Promise<HistoryModule> {
  await applyHistoryChunkInterval(
    database,
    historyChunkDays(config.history.chunkDays, market.source),
    logger.child({ component: 'history' }),
  );
  await applyHistoryRetention(database, config.history.retentionDays, logger.child({ component: 'history' }));
  const announce = changes ? <T>(write: () => Promise<T>) => changes.writing([HISTORY], write) : <T>(write: () => Promise<T>) => write();
  const rows = new HistoryRepository(database.db);
  const writer = await HistoryWriter.open({
    repository: { insertMany: (batch) => announce(() => rows.insertMany(batch)) },
    logger: logger.child({ component: 'history' }),
    spillDir: config.history.spillDir,
    flushIntervalMs: config.history.flushIntervalMs,
    maxBufferRows: config.history.maxBufferRows,
    onRowsWritten: (n) => metrics.historyRowsWrittenTotal.inc(n),
    onBufferSize: (n) => metrics.historyBufferRows.set(n),
    closeTimeoutMs: budget.historyMs,
  });
  const outcomes = new OutcomesService({
    repository: new OutcomesRepository(database.db, market.source, announce),
    market: market.forPastBars,
    logger: logger.child({ component: 'outcomes' }),
  });
  return {
    writer,
    sink: historyOfPredictions(writer, market.source),
    queries: new HistoryQueryService({
      repository: new HistoryReadRepository(database.db, { rollups: historyRollupsOf(database) }),
      market: market.provider,
      maxSymbolsPerRequest: config.predictions.maxSymbolsPerRequest,
      servingMarket: market.source,
    }),
    outcomes,
    databaseHealth: servingWithoutDatabase(database.health, writer, market.provider.name === 'synthetic'),
    health: { name: 'history', check: async () => writer.health() },
    closeSteps: [
      // Closed after whatever records (the signals monitor), before the database: the final flush still has a pool.
      { name: 'history', close: () => writer.close(), timeoutMs: budget.historyMs + budget.stepMs },
      ...(config.outcomes.intervalMs > 0 ? [{ name: 'outcomes', close: outcomes.schedule(config.outcomes.intervalMs) }] : []),
    ],
  };
}

/**
 * At run time (migrations ran at start-up) an unreachable database makes the instance `degraded`, not
 * `down`: predictions are still served (from the synthetic market, or from the last good bars marked
 * `stale` while the market-data breaker is open) and history rows wait in the writer's buffer and
 * spill files. HTTP 200, so load balancers keep routing prediction traffic to it; with every instance
 * sharing one database, 503 would turn a database outage into a total one.
 */
function servingWithoutDatabase(check: HealthCheck, history: Pick<HistoryWriter, 'state'>, synthetic: boolean): HealthCheck {
  return {
    name: check.name,
    async check() {
      const result = await check.check();
      if (result.status !== 'down') return result;
      const { bufferedRows, spilledRows } = history.state;
      return {
        status: 'degraded',
        detail:
          `${result.detail ?? 'unreachable'}; predictions still served (${synthetic ? 'synthetic market' : 'last good bars, marked stale'}); ` +
          `history rows waiting: ${bufferedRows} in memory, ${spilledRows} on disk`,
      };
    },
  };
}
