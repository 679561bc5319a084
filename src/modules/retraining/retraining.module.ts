import { randomUUID } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/index.js';
import type { Database } from '../../infra/db/index.js';
import type { Logger } from '../../infra/logger/logger.js';
import type { MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import { findStrategy, type StrategyDefinition } from '../../domain/strategies.js';
import type { CloseStep } from '../../shared/lifecycle.js';
import type { ModelLifecycle, ModelRegistry } from '../models/index.js';
import { RetrainRunsRepository } from './retraining.repository.js';
import { startSchedule, type Schedule } from './retraining.schedule.js';
import { CLAIM_GRACE_MS, RetrainingService, STAGING_DIRECTORY } from './retraining.service.js';

export interface RetrainingModuleDeps {
  readonly config: Pick<Config, 'retrain' | 'modelsDir'>;
  readonly database: Pick<Database, 'db' | 'engine'>;
  /** The serving market: only stored bars are trained on. */
  readonly market: { readonly source: string; readonly provider: Pick<MarketDataProvider, 'fetchBars' | 'listSymbols'> };
  readonly registry: Pick<ModelRegistry, 'verifyDirectory' | 'strategies'>;
  readonly lifecycle: Pick<ModelLifecycle, 'setShadow'>;
  readonly metrics: Pick<Metrics, 'retrainRunsTotal' | 'retrainSeconds' | 'retrainInProgress' | 'retrainRuns'>;
  readonly logger: Logger;
}

export interface RetrainingModule {
  /** Absent when RETRAIN_SCHEDULE is unset. */
  readonly service: RetrainingService | undefined;
  readonly schedule: Schedule | undefined;
  /** Every run recorded in the database, whichever instance ran it. */
  readonly runs: RetrainRunsRepository;
  readonly closeSteps: readonly CloseStep[];
}

/**
 * Scheduled retraining (docs/decisions/scheduled-retraining.md): with RETRAIN_SCHEDULE set, every
 * instance runs the schedule and the database decides which of them trains each tick. Without it, the
 * instance still reports the recorded runs on /metrics (another instance may be retraining).
 * Throws at start-up when RETRAIN_STRATEGIES names a strategy Sibyl does not know.
 */
export async function createRetrainingModule(deps: RetrainingModuleDeps): Promise<RetrainingModule> {
  const { config, database, metrics } = deps;
  const logger = deps.logger.child({ component: 'retraining' });
  const runs = new RetrainRunsRepository(database.db);
  metrics.retrainRuns.source = () => runs.lastFinished();
  const { schedule: pattern, timezone } = config.retrain;
  if (pattern === undefined) return { service: undefined, schedule: undefined, runs, closeSteps: [] };

  const strategies = chosenStrategies(config.retrain.strategies, deps.registry.strategies());
  const instance = randomUUID();
  await removeStaleStaging(path.join(config.modelsDir, STAGING_DIRECTORY), config.retrain.timeoutMs + CLAIM_GRACE_MS, logger);
  const service = new RetrainingService({
    strategies,
    family: config.retrain.family,
    timeoutMs: config.retrain.timeoutMs,
    maxMemoryMb: config.retrain.maxMemoryMb,
    modelsDir: config.modelsDir,
    runs,
    market: { ...deps.market, engine: database.engine },
    registry: deps.registry,
    lifecycle: deps.lifecycle,
    metrics,
    logger,
    instance,
  });
  const schedule = startSchedule({
    pattern,
    timezone,
    onTick: (tick) => service.runTick(tick),
    onBusy: (tick) => service.skipTick(tick, 'the previous tick is still running on this instance'),
    logger,
  });
  logger.info(
    { schedule: pattern, timezone, strategies: service.strategies, family: config.retrain.family, instance, nextRun: schedule.nextRun() },
    `scheduled retraining of ${service.strategies.join(', ')} on "${pattern}" (${timezone}); next tick ${schedule.nextRun()?.toISOString() ?? 'never'}`,
  );
  return {
    service,
    schedule,
    runs,
    closeSteps: [
      {
        name: 'retraining',
        close: async () => {
          schedule.stop();
          await service.close();
        },
      },
    ],
  };
}

function chosenStrategies(named: readonly string[] | undefined, served: readonly string[]): StrategyDefinition[] {
  const names = named ?? served;
  const unknown = names.filter((name) => !findStrategy(name));
  if (unknown.length) {
    throw new Error(
      `RETRAIN_STRATEGIES names unknown strateg${unknown.length === 1 ? 'y' : 'ies'} ${unknown.join(', ')}; known: ${served.join(', ')}`,
    );
  }
  return names.map((name) => findStrategy(name)!);
}

/**
 * Staging directories left by a gateway that died mid-run (a shutdown removes its own). Only those
 * older than a claim can live: a younger one may be another instance's run in progress (MODELS_DIR
 * shared between instances).
 */
async function removeStaleStaging(directory: string, olderThanMs: number, logger: Logger): Promise<void> {
  const entries = await readdir(directory).catch(() => [] as string[]);
  for (const entry of entries) {
    const full = path.join(directory, entry);
    const modified = await stat(full).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (modified !== undefined && Date.now() - modified > olderThanMs) {
      await rm(full, { recursive: true, force: true });
      logger.info({ directory: full }, 'removed a staging directory a stopped run left behind');
    }
  }
}
