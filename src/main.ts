import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import type { Config } from './config/index.js';
import { composeInfrastructure } from './infra/compose.js';
import type { Logger } from './infra/logger/logger.js';
import { BarsRepository } from './infra/market-data/bars-repository.js';
import { chooseMarket } from './infra/market-data/choose-market.js';
import { msUntilNextBar, tapFeed } from './infra/market-data/feed.js';
import { ALL_BARS, barsOf, modelsOf } from './infra/response-cache/inputs.js';
import { serveMarket } from './infra/market-data/serving.js';
import { createAccessModule } from './modules/access/index.js';
import { createBacktestModule } from './modules/backtest/index.js';
import { createDriftModule } from './modules/drift/index.js';
import { createExplanationsModule } from './modules/explanations/index.js';
import { createHealthModule } from './modules/health/index.js';
import { createHistoryModule } from './modules/history/index.js';
import { createMetricsModule } from './modules/metrics/index.js';
import { createModelsModule } from './modules/models/index.js';
import { createPredictionsModule } from './modules/predictions/index.js';
import { createRetrainingModule } from './modules/retraining/index.js';
import { createSignalsModule } from './modules/signals/index.js';
import { runProcess } from './process.js';
import { serveGateway } from './server/serve.js';
import { Lifecycle, shutdownBudget } from './shared/lifecycle.js';
import { VERSION } from './shared/version.js';

import type { RunningGateway } from './running-gateway.js';

export type { RunningGateway };

/**
 * The composition root (docs/decisions/composition-root.md): infrastructure from the configuration,
 * then one factory per module, the schema and the server. Every part registers its close steps with
 * the lifecycle as it is built, which releases them in reverse, at shutdown or after a failed start.
 */
export async function startGateway(config: Config, logger: Logger): Promise<RunningGateway> {
  const started = performance.now();
  const budget = shutdownBudget(config.shutdownTimeoutMs);
  const lifecycle = new Lifecycle({ logger, stepMs: budget.stepMs });
  try {
    const infra = await composeInfrastructure({ config, logger, lifecycle });
    const { database, cache, events, metrics, responseCache } = infra;
    // With the response cache on, every change of what answers read is reported to it (inputs.ts).
    const changes = responseCache?.versions;

    const models = await createModelsModule({ config, database, events, onEventsReconnected: infra.onEventsReconnected, metrics, logger });
    lifecycle.add(...models.closeSteps);
    if (changes) models.registry.onChange((strategy) => changes.changed([modelsOf(strategy)]));
    const chosen = await chooseMarket({
      config,
      repository: new BarsRepository(database.db),
      metrics,
      logger,
      announceWrites: changes && ((symbols, write) => changes.writing(symbols.map(barsOf), write)),
    });
    lifecycle.add({ name: 'market vendor', close: chosen.release });
    // Every feed announces its bars once the provider serves them: the moment their symbols' bars change.
    const choice =
      changes && chosen.feed
        ? { ...chosen, feed: tapFeed(chosen.feed, (bars) => changes.changed([...new Set(bars.map((bar) => barsOf(bar.symbol)))])) }
        : chosen;
    const market = serveMarket({ choice, config, metrics, logger, onBreakerStateChange: changes && (() => changes.changed([ALL_BARS])) });
    lifecycle.add(...market.closeSteps);
    const history = await createHistoryModule({ config, database, market, metrics, budget, logger, changes });
    lifecycle.add(...history.closeSteps);

    const { registry } = models;
    const predictions = createPredictionsModule({
      config,
      market: market.forPredictions,
      pastBars: market.forPastBars,
      recordedActiveAt: models.recordedActiveAt,
      registry,
      cache,
      sink: history.sink,
      metrics,
      logger,
      changes,
    });
    const explanations = createExplanationsModule({ database, source: choice.source, logger });
    const modelMetrics = createMetricsModule({ config, database, source: choice.source, registry, metrics });
    const drift = createDriftModule({ registry, market: choice.provider, modelMetrics: modelMetrics.service, metrics });
    // The promotion loop reads its evidence through the same services the API answers with.
    const promotion = models.startPromotionLoop(
      {
        compare: (query) => modelMetrics.comparison.compareModels(query),
        latestOutcome: (strategy, version) => modelMetrics.service.latestOutcome(strategy, version),
        realized: (query) => modelMetrics.service.modelMetrics(query),
        drift: (query) => drift.service.drift(query),
      },
      infra.leaseFor('models:promotion'),
    );
    lifecycle.add(...promotion.closeSteps);
    history.outcomes.onResolved(() => promotion.loop.evaluateSoon());
    const signals = createSignalsModule({
      config,
      events,
      coordination: infra.coordination,
      database,
      market: choice,
      registry,
      predictions: predictions.service,
      history: history.writer,
      metrics,
      logger,
    });
    lifecycle.add(...signals.closeSteps);
    // After the models, the market and the database in the close order's reverse: a training child is
    // killed and its run recorded before the database closes.
    const retraining = await createRetrainingModule({
      config,
      database,
      market: choice,
      registry,
      lifecycle: models.lifecycle,
      metrics,
      logger,
    });
    lifecycle.add(...retraining.closeSteps);
    const access = await createAccessModule({ config, database, events, logger });
    lifecycle.add(...access.closeSteps);
    const health = createHealthModule({
      config,
      checks: [history.databaseHealth, ...infra.health, models.health, market.health, history.health, ...access.health],
    });

    const { port, server, rateLimit, graphql } = await serveGateway({
      config,
      services: {
        health: health.service,
        predictions: predictions.service,
        pointInTime: predictions.pointInTime,
        backtest: createBacktestModule({ market: market.forPastBars, registry }).service,
        models: models.service,
        history: history.queries,
        metrics: modelMetrics.service,
        comparison: modelMetrics.comparison,
        drift: drift.service,
        apiKeys: access.apiKeys,
        signals: signals.service,
        explanations: explanations.service,
      },
      access,
      metrics,
      logger,
      rateLimitStore: infra.redis?.command,
      msUntilNextBar: () => msUntilNextBar(choice.feed),
      responseCache,
    });
    logger.info(
      {
        port,
        host: config.host,
        database: database.engine,
        redis: Boolean(infra.redis),
        market: market.provider.name,
        feed: choice.feed?.name,
        strategies: registry.strategies(),
        auth: config.auth.mode,
        rateLimit,
        responseCache: responseCache ? `${Math.round(config.responseCache.maxBytes / 1_048_576)} MiB` : 'off',
        startupMs: Math.round(performance.now() - started),
      },
      `sibyl ${VERSION} listening on http://${config.host}:${port}/graphql`,
    );

    let stopping: Promise<void> | undefined;
    return {
      ...{ port, config, database, cache, events, market: market.provider, registry, lifecycle: models.lifecycle, responseCache },
      ...{ history: history.writer, outcomes: history.outcomes, promotion: promotion.loop },
      signals: { service: signals.service, monitor: signals.monitor, feed: choice.feed },
      retraining: { service: retraining.service, schedule: retraining.schedule, runs: retraining.runs },
      graphql,
      stop: () => (stopping ??= server.close(budget.drainMs).finally(() => lifecycle.stop())),
    };
  } catch (error) {
    await lifecycle.stop();
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void runProcess(startGateway);
}
