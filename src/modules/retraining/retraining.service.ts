import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../infra/logger/logger.js';
import { STORED_MARKET, type Bar, type MarketDataProvider } from '../../infra/market-data/market-data.js';
import type { Metrics } from '../../infra/metrics/metrics.js';
import { lastCompleteSession } from '../../infra/market-data/nyse-calendar.js';
import type { Manifest } from '../../domain/manifest.js';
import type { StrategyDefinition } from '../../domain/strategies.js';
import { ModelRefusedError, type ModelLifecycle, type ModelRegistry } from '../models/index.js';
import type { RetrainJob } from '../../training/retrain-protocol.js';
import { TrainingCancelled, TrainingFailed, trainInChild } from './retraining.child.js';
import { SCHEDULER_ACTOR, type FinishedStatus, type RetrainRunsRepository } from './retraining.repository.js';

/** Hidden directory under MODELS_DIR where versions are written before they are verified and moved into place. */
export const STAGING_DIRECTORY = '.staging';
/** A claim outlives its run's timeout by this much, so a live claimant always finishes (or fails) it first. */
export const CLAIM_GRACE_MS = 60_000;
/**
 * Symbols per read of the bars store. Each read's rows are parsed on the gateway's event loop; one
 * symbol (about 5,500 daily bars for 22 years) keeps each parse to milliseconds between requests,
 * where a read of every symbol at once would hold the loop for as long as 320,000 rows take.
 */
const SYMBOLS_PER_READ = 1;
const DAY_MS = 86_400_000;

export type RetrainResult = 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface StrategyOutcome {
  readonly strategy: string;
  readonly result: RetrainResult;
  readonly version?: string;
  /** Why it failed, was skipped or cancelled. */
  readonly reason?: string;
}

/** The run this instance is doing now, if any. */
export interface CurrentRun {
  readonly strategy: string;
  readonly version: string;
  readonly scheduledFor: Date;
  readonly startedAt: Date;
  /** The training child's pid once it is spawned. */
  readonly pid?: number;
}

export interface RetrainingServiceOptions {
  readonly strategies: readonly StrategyDefinition[];
  readonly family: 'logistic' | 'gbt';
  readonly timeoutMs: number;
  readonly maxMemoryMb: number;
  readonly modelsDir: string;
  readonly runs: RetrainRunsRepository;
  /** Where bars are read: the serving market (only a stored one is trained on). `engine` names the database for provenance. */
  readonly market: {
    readonly source: string;
    readonly provider: Pick<MarketDataProvider, 'fetchBars' | 'listSymbols'>;
    readonly engine: string;
  };
  readonly registry: Pick<ModelRegistry, 'verifyDirectory'>;
  readonly lifecycle: Pick<ModelLifecycle, 'setShadow'>;
  readonly metrics: Pick<Metrics, 'retrainRunsTotal' | 'retrainSeconds' | 'retrainInProgress'>;
  readonly logger: Logger;
  /** This instance's id in `retrain_runs.instance` and the logs. */
  readonly instance: string;
  readonly now?: () => Date;
}

/** A failure of one step of a run: `stage` and `message` go to the audit log. */
class RunFailed extends Error {
  constructor(
    readonly stage: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One scheduled tick, strategy after strategy: claim the tick in `retrain_runs` (or skip it: another
 * instance has it, or a run of the strategy is still going), train in a child process on the stored bars
 * up to the last complete session, verify the written version as activation does, move it into the
 * models directory, register it as the strategy's shadow through the lifecycle (so every instance
 * learns of it), and record the outcome with its audit row. Nothing here throws into the scheduler:
 * every outcome is logged, counted and, past the claim, recorded and audited.
 */
export class RetrainingService {
  readonly #options: RetrainingServiceOptions;
  readonly #now: () => Date;
  readonly #stopping = new AbortController();
  #current: CurrentRun | undefined;
  #tick: Promise<unknown> | undefined;

  constructor(options: RetrainingServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  get strategies(): readonly string[] {
    return this.#options.strategies.map((s) => s.name);
  }

  current(): CurrentRun | undefined {
    return this.#current;
  }

  /** Runs every configured strategy for `scheduledFor`, one after another. Never rejects. */
  runTick(scheduledFor: Date): Promise<StrategyOutcome[]> {
    const tick = (async () => {
      const outcomes: StrategyOutcome[] = [];
      for (const strategy of this.#options.strategies) {
        if (this.#stopping.signal.aborted) break;
        outcomes.push(await this.#runStrategy(strategy, scheduledFor));
      }
      return outcomes;
    })();
    this.#tick = tick;
    return tick;
  }

  /** A tick that fired while this instance's previous one still runs: counted and logged per strategy. */
  skipTick(scheduledFor: Date, reason: string): void {
    for (const { name } of this.#options.strategies) {
      this.#options.metrics.retrainRunsTotal.inc({ strategy: name, result: 'skipped' });
      this.#options.logger.info({ strategy: name, scheduledFor, reason }, `retrain ${name} skipped: ${reason}`);
    }
  }

  /** Kills a training in progress and waits for its run to be recorded as cancelled. */
  async close(): Promise<void> {
    this.#stopping.abort();
    await this.#tick;
  }

  async #runStrategy(strategy: StrategyDefinition, scheduledFor: Date): Promise<StrategyOutcome> {
    const { runs, metrics, logger, instance, timeoutMs, family } = this.#options;
    const name = strategy.name;
    const version = versionName(scheduledFor, family);
    const started = performance.now();
    const deadline = Date.now() + timeoutMs;
    const log = logger.child({ strategy: name, version, scheduledFor });

    let claim;
    try {
      claim = await runs.claim({ strategy: name, scheduledFor, instance, ttlMs: timeoutMs + CLAIM_GRACE_MS, version });
    } catch (error) {
      metrics.retrainRunsTotal.inc({ strategy: name, result: 'failed' });
      log.error({ err: error }, `retrain ${name}: could not claim the run in the database; nothing trained`);
      return { strategy: name, result: 'failed', reason: `could not claim: ${(error as Error).message}` };
    }
    if (!claim.claimed) {
      const holder = claim.holder;
      const reason =
        claim.why === 'tick-claimed'
          ? `instance ${holder?.instance ?? '?'} claimed this tick`
          : `a run of ${name} is still going on instance ${holder?.instance ?? '?'} (tick ${holder?.scheduledFor.toISOString() ?? '?'})`;
      metrics.retrainRunsTotal.inc({ strategy: name, result: 'skipped' });
      log.info({ holder }, `retrain ${name} skipped: ${reason}`);
      return { strategy: name, result: 'skipped', reason };
    }
    for (const abandoned of claim.expired)
      log.warn({ abandoned }, `retrain ${name}: run of instance ${abandoned.instance} expired unfinished; recorded as failed`);

    this.#current = { strategy: name, version, scheduledFor, startedAt: this.#now() };
    metrics.retrainInProgress.set({ strategy: name }, 1);
    log.info({ instance, family }, `retrain ${name} started: training ${version} in a child process`);
    const staging = path.join(this.#options.modelsDir, STAGING_DIRECTORY, `${name}.${version}.${instance.slice(0, 8)}`);
    const written = path.join(staging, name, version);
    let status: FinishedStatus;
    let detail: Record<string, unknown>;
    try {
      const manifest = await this.#train(strategy, version, written, deadline, log);
      detail = { ...figures(manifest), durationMs: Math.round(performance.now() - started) };
      status = 'succeeded';
      log.info(
        detail,
        `retrain ${name} succeeded: ${name}@${version} is the shadow version (held-out Brier ${manifest.offlineMetrics.brier.toFixed(5)} vs base rate ${manifest.offlineMetrics.baselineBrier.toFixed(5)})`,
      );
    } catch (error) {
      const cancelled = error instanceof TrainingCancelled;
      status = cancelled ? 'cancelled' : 'failed';
      const stage = error instanceof RunFailed || error instanceof TrainingFailed ? error.stage : cancelled ? 'cancelled' : 'unexpected';
      detail = { stage, reason: (error as Error).message, durationMs: Math.round(performance.now() - started) };
      if (cancelled) log.warn(detail, `retrain ${name} cancelled: ${(error as Error).message}`);
      else log.error(detail, `retrain ${name} failed (${stage}): ${(error as Error).message}; the shadow version is unchanged`);
    } finally {
      await rm(staging, { recursive: true, force: true }).catch((error: unknown) =>
        log.warn({ err: error, staging }, 'could not remove the staging directory'),
      );
      metrics.retrainInProgress.set({ strategy: name }, 0);
      this.#current = undefined;
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.retrainRunsTotal.inc({ strategy: name, result: status });
    metrics.retrainSeconds.observe({ strategy: name, result: status }, seconds);
    try {
      const recorded = await runs.finish({ strategy: name, scheduledFor, instance, status, version, detail });
      if (!recorded) log.warn(`retrain ${name}: the run's claim expired and was taken over; its ${status} outcome is only in this log`);
    } catch (error) {
      log.error({ err: error }, `retrain ${name}: could not record the ${status} run (it stays "running" until its claim expires)`);
    }
    return { strategy: name, result: status, version, ...(status !== 'succeeded' && { reason: String(detail.reason) }) };
  }

  /** Trains, verifies, installs and registers one version; throws RunFailed, TrainingFailed or TrainingCancelled. */
  async #train(strategy: StrategyDefinition, version: string, written: string, deadline: number, log: Logger): Promise<Manifest> {
    const { market, registry, lifecycle, modelsDir, family, maxMemoryMb } = this.#options;
    const signal = this.#stopping.signal;
    if (market.source !== STORED_MARKET) {
      throw new RunFailed(
        'bars',
        'no stored bars to train on: the gateway serves the synthetic market (import bars with npm run import, or use a vendor MARKET_PROVIDER)',
      );
    }
    const session = lastCompleteSession(this.#now());
    // Through the end of that session's date, however a vendor stamps its daily bar within it.
    const until = new Date(session.getTime() + DAY_MS - 1);
    const symbols = await market.provider.listSymbols().catch((error: unknown) => {
      throw new RunFailed('bars', `listing the stored symbols failed: ${(error as Error).message}`);
    });
    if (symbols.length === 0) throw new RunFailed('bars', 'no stored bars to train on');
    const job: RetrainJob = {
      strategy: strategy.name,
      version,
      family,
      createdAt: this.#now().toISOString(),
      directory: written,
      source: `bars store (${market.engine}), ${symbols.length} symbols up to the session of ${session.toISOString().slice(0, 10)}`,
    };
    await mkdir(path.dirname(written), { recursive: true }).catch((error: unknown) => {
      throw new RunFailed('install', `cannot write in MODELS_DIR: ${(error as Error).message}`);
    });
    await trainInChild(job, readBars(market.provider, symbols, until), {
      maxMemoryMb,
      deadline,
      signal,
      onStep: (step) => log.info({ step }, `retrain ${strategy.name}: ${step}`),
      onSpawn: (pid) => {
        if (this.#current) this.#current = { ...this.#current, pid };
        log.info({ pid }, `retrain ${strategy.name}: training process ${pid} started`);
      },
    });

    let manifest: Manifest;
    try {
      manifest = await registry.verifyDirectory(written);
    } catch (error) {
      throw new RunFailed(
        'verify',
        error instanceof ModelRefusedError ? `the written version fails verification: ${error.reason}` : (error as Error).message,
      );
    }
    if (signal.aborted) throw new TrainingCancelled();

    const target = path.join(modelsDir, strategy.name, version);
    if (
      await stat(target).then(
        () => true,
        () => false,
      )
    )
      throw new RunFailed('install', `${strategy.name}/${version} already exists in the models directory`);
    try {
      await mkdir(path.dirname(target), { recursive: true });
      await rename(written, target); // atomic: a rescan sees the whole version or none of it
    } catch (error) {
      throw new RunFailed('install', `moving the version into the models directory failed: ${(error as Error).message}`);
    }
    try {
      await lifecycle.setShadow(strategy.name, version, SCHEDULER_ACTOR);
    } catch (error) {
      throw new RunFailed(
        'shadow',
        `${strategy.name}@${version} is in the models directory but could not be registered as shadow: ${(error as Error).message}`,
      );
    }
    return manifest;
  }
}

/** The stored bars of `symbols` up to `until`, a few symbols per read (see SYMBOLS_PER_READ). */
async function* readBars(
  provider: Pick<MarketDataProvider, 'fetchBars'>,
  symbols: readonly string[],
  until: Date,
): AsyncGenerator<{ symbol: string; bars: readonly Bar[] }> {
  for (let i = 0; i < symbols.length; i += SYMBOLS_PER_READ) {
    const chunk = symbols.slice(i, i + SYMBOLS_PER_READ);
    const bars = await provider.fetchBars(chunk, { lookback: 1_000_000, until });
    for (const symbol of chunk) {
      const list = bars.get(symbol);
      if (list?.length) yield { symbol, bars: list };
    }
  }
}

/** `r20261204T233000Z` (the tick in UTC), `-gbt` for the trees: one name per strategy and tick. */
export function versionName(scheduledFor: Date, family: 'logistic' | 'gbt'): string {
  const stamp = scheduledFor
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replaceAll('-', '')
    .replaceAll(':', '');
  return `r${stamp}${family === 'gbt' ? '-gbt' : ''}`;
}

/** What the audit row keeps of a trained version: provenance and its held-out figures beside the base rate. */
function figures(manifest: Manifest): Record<string, unknown> {
  const m = manifest.offlineMetrics;
  const skill = m.estimates?.find((e) => e.metric === 'brierSkillVsTrainingBaseRate');
  return {
    family: manifest.family ?? 'logistic',
    sha256: manifest.sha256,
    data: {
      source: manifest.data.source,
      symbols: manifest.data.symbols.length,
      bars: manifest.data.bars,
      from: manifest.data.from,
      to: manifest.data.to,
    },
    training: { train: manifest.training.train, validation: manifest.training.validation },
    heldOut: {
      from: m.period.from,
      to: m.period.to,
      samples: m.sampleSize,
      accuracy: m.accuracy,
      baselineAccuracy: m.baselineAccuracy,
      brier: m.brier,
      baselineBrier: m.baselineBrier,
      logLoss: m.logLoss,
      baselineLogLoss: m.baselineLogLoss,
      ece: m.ece,
      intervalCoverage95: m.intervalCoverage['0.95'] ?? null,
      brierSkill: skill ? { value: skill.value, low: skill.low, high: skill.high, level: skill.level } : null,
      verdict: m.verdict,
      bootstrapVerdict: m.estimation?.verdict ?? null,
    },
  };
}
