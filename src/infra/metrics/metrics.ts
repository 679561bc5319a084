import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every Prometheus series Sibyl exports (DESIGN.md §5: the names are binding). One registry per
 * gateway instance rather than prom-client's global one, so tests can run several in one process.
 * A metric is added here when code that feeds it from real work exists.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's three gauges named `*_total` break the exposition naming rule (`promtool check metrics`:
  // "non-counter metrics should not have _total suffix"), and each is the sum of the same family
  // without the suffix, by type (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
    registry.removeSingleMetric(name);
  /** Where `sibyl_market_bars_flagged` reads the stored counts from; set once the bars store is open. */
  const flaggedBars: { source?: () => Promise<ReadonlyMap<string, number>> } = {};
  /** Where the `sibyl_models_*` load gauges read from; set once the model registry is loaded. */
  const modelLoading: { source?: () => { refused: number; unservable: number } } = {};
  /** Where `sibyl_retrain_last_run_timestamp_seconds` reads the recorded runs from; set by the retraining module. */
  const retrainRuns: { source?: () => Promise<ReadonlyArray<{ strategy: string; status: string; finishedAt: Date }>> } = {};
  /** Where the `sibyl_response_cache_*` gauges read from; set when the response cache is on. */
  const responseCache: { source?: () => { entries: number; bytes: number; available: boolean } } = {};
  return {
    registry,
    flaggedBars,
    modelLoading,
    retrainRuns,
    responseCache,
    responseCacheStoresTotal: new Counter({
      name: 'sibyl_response_cache_stores_total',
      help:
        'What became of the answer of each response-cache miss, by outcome: stored, or why not (changed: an input changed while it ran; ' +
        'uncacheable: a field outside the field map, or not a query; volatile: stale market data; error; too-large; unavailable: invalidations ' +
        'from other instances not arriving; no-store: asked by the client)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    responseCacheInvalidationsTotal: new Counter({
      name: 'sibyl_response_cache_invalidations_total',
      help: 'Changes of inputs of cached answers, by input kind (bars, models, history, all) and origin (local: made here; remote: heard from another instance)',
      labelNames: ['input', 'origin'] as const,
      registers: [registry],
    }),
    responseCacheEntries: new Gauge({
      name: 'sibyl_response_cache_entries',
      help: 'Answers held by the response cache',
      registers: [registry],
      collect() {
        const state = responseCache.source?.();
        if (state) this.set(state.entries);
      },
    }),
    responseCacheBytes: new Gauge({
      name: 'sibyl_response_cache_bytes',
      help: 'Bytes held by the response cache (answers and keys), against RESPONSE_CACHE_MAX_MB',
      registers: [registry],
      collect() {
        const state = responseCache.source?.();
        if (state) this.set(state.bytes);
      },
    }),
    responseCacheAvailable: new Gauge({
      name: 'sibyl_response_cache_available',
      help: 'Whether the response cache serves (1) or is bypassed because invalidations from other instances cannot be received (0)',
      registers: [registry],
      collect() {
        const state = responseCache.source?.();
        if (state) this.set(state.available ? 1 : 0);
      },
    }),
    marketBarsFlaggedTotal: new Counter({
      name: 'sibyl_market_bars_flagged_total',
      help: 'Bars stored by this instance with a data-quality flag (vendor ingest), by flag (a bar with two counts under both)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    marketBarsFlagged: new Gauge({
      name: 'sibyl_market_bars_flagged',
      help: 'Bars in the bars store with a data-quality flag (imported or ingested), by flag, read from the database at scrape time',
      labelNames: ['reason'] as const,
      registers: [registry],
      async collect() {
        if (!flaggedBars.source) return;
        // A failing database must not fail the whole scrape: the gauge keeps its last values.
        const counts = await flaggedBars.source().catch(() => undefined);
        if (!counts) return;
        this.reset();
        for (const [reason, n] of counts) this.set({ reason }, n);
      },
    }),
    graphqlRequestSeconds: new Histogram({
      name: 'sibyl_graphql_request_seconds',
      help: 'GraphQL operation duration, from parsed request to response, by operation type',
      labelNames: ['operation_type'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    graphqlErrorsTotal: new Counter({
      name: 'sibyl_graphql_errors_total',
      help: 'GraphQL errors returned to clients, by extensions.code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    graphqlCompilationsTotal: new Counter({
      name: 'sibyl_graphql_compilations_total',
      help: 'Operations compiled by graphql-jit (GRAPHQL_JIT=on), by result: compiled, or not_compiled (executed by graphql-js instead)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    inferenceRunsTotal: new Counter({
      name: 'sibyl_inference_runs_total',
      help: 'Inference runs (one model call over a batch of rows), by model',
      labelNames: ['strategy', 'version'] as const,
      registers: [registry],
    }),
    inferenceBatchSize: new Histogram({
      name: 'sibyl_inference_batch_size',
      help: 'Rows per inference run',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers: [registry],
    }),
    inferenceSeconds: new Histogram({
      name: 'sibyl_inference_seconds',
      help: 'Duration of one inference run',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05],
      registers: [registry],
    }),
    marketFetchesTotal: new Counter({
      name: 'sibyl_market_fetches_total',
      help: 'Calls to a market-data provider (each answers many symbols)',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    marketBreakerState: new Gauge({
      name: 'sibyl_market_breaker_state',
      help: 'Market-data circuit breaker per provider: 0 closed, 1 half-open (one trial call), 2 open (serving last good bars as stale)',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    modelsRefused: new Gauge({
      name: 'sibyl_models_refused',
      help: 'Model version directories on disk this instance could not load (bad manifest, checksum, shape or smoke inference), read at scrape time',
      registers: [registry],
      collect() {
        const state = modelLoading.source?.();
        if (state) this.set(state.refused);
      },
    }),
    modelsActiveUnservable: new Gauge({
      name: 'sibyl_models_active_unservable',
      help: 'Strategies whose recorded active version this instance cannot load (it serves another or nothing), read at scrape time',
      registers: [registry],
      collect() {
        const state = modelLoading.source?.();
        if (state) this.set(state.unservable);
      },
    }),
    cacheRequestsTotal: new Counter({
      name: 'sibyl_cache_requests_total',
      help: 'Cache lookups by tier (market, features, predictions, response) and result (hit, miss)',
      labelNames: ['tier', 'result'] as const,
      registers: [registry],
    }),
    historyRowsWrittenTotal: new Counter({
      name: 'sibyl_history_rows_written_total',
      help: 'Prediction history rows committed to the database',
      registers: [registry],
    }),
    historyBufferRows: new Gauge({
      name: 'sibyl_history_buffer_rows',
      help: 'Prediction history rows accepted and waiting in memory to be written',
      registers: [registry],
    }),
    subscriptionsActive: new Gauge({
      name: 'sibyl_subscriptions_active',
      help: 'GraphQL subscriptions (live signals) open on this instance',
      registers: [registry],
    }),
    signalsPublishedTotal: new Counter({
      name: 'sibyl_signals_published_total',
      help: 'Live predictions published by the signals monitor (counted on the instance running it), by strategy',
      labelNames: ['strategy'] as const,
      registers: [registry],
    }),
    signalsTicksTotal: new Counter({
      name: 'sibyl_signals_ticks_total',
      help: 'Signals monitor ticks that had something to compute (counted on the instance running it), by trigger: bars (the feed announced new bars) or interval',
      labelNames: ['trigger'] as const,
      registers: [registry],
    }),
    // Set each time realized `modelMetrics` of one version over all symbols is computed, for the same
    // reason the drift gauges are (below): the window is the asker's choice, not a timer's.
    modelIntervalCoverage: new Gauge({
      name: 'sibyl_model_interval_coverage',
      help: 'Realized coverage of the 95% price interval over the last window modelMetrics was asked for (all symbols, serving market), by model version',
      labelNames: ['strategy', 'version'] as const,
      registers: [registry],
    }),
    modelIntervalCoverageSamples: new Gauge({
      name: 'sibyl_model_interval_coverage_samples',
      help: 'Resolved predictions with a 95% interval behind sibyl_model_interval_coverage',
      labelNames: ['strategy', 'version'] as const,
      registers: [registry],
    }),
    modelPromotionsTotal: new Counter({
      name: 'sibyl_model_promotions_total',
      help: 'Decisions the promotion policy recorded (on the instance holding its lease), by strategy, action (promote, rollback, alert, hold) and whether the serving version changed (applied)',
      labelNames: ['strategy', 'action', 'applied'] as const,
      registers: [registry],
    }),
    modelPromotionFailuresTotal: new Counter({
      name: 'sibyl_model_promotion_failures_total',
      help: 'Promotion evaluations that failed before deciding (evidence could not be read), by strategy; nothing changed',
      labelNames: ['strategy'] as const,
      registers: [registry],
    }),
    // Set each time `drift` is computed (docs/decisions/drift.md: computing it on a timer would pick a
    // window and a symbol set for the operator, and spend minutes of CPU per instance nobody asked for).
    driftPsi: new Gauge({
      name: 'sibyl_drift_psi',
      help: 'PSI of a model input (or `probability`) over the last window `drift` was asked for, against the training distribution',
      labelNames: ['strategy', 'version', 'feature'] as const,
      registers: [registry],
    }),
    driftKs: new Gauge({
      name: 'sibyl_drift_ks',
      help: 'Kolmogorov-Smirnov distance (on the reference bins) of a model input (or `probability`) over the last window `drift` was asked for',
      labelNames: ['strategy', 'version', 'feature'] as const,
      registers: [registry],
    }),
    retrainRunsTotal: new Counter({
      name: 'sibyl_retrain_runs_total',
      help: 'Scheduled retraining runs on this instance, by strategy and result: succeeded, failed, cancelled (shutdown), skipped (another instance has the tick, or a run is still going)',
      labelNames: ['strategy', 'result'] as const,
      registers: [registry],
    }),
    retrainSeconds: new Histogram({
      name: 'sibyl_retrain_seconds',
      help: 'Duration of a scheduled retraining run this instance ran (reading bars, training in the child, verifying, registering), by strategy and result',
      labelNames: ['strategy', 'result'] as const,
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    retrainInProgress: new Gauge({
      name: 'sibyl_retrain_in_progress',
      help: 'Whether this instance is running a scheduled retraining of the strategy now (1) or not (0)',
      labelNames: ['strategy'] as const,
      registers: [registry],
    }),
    // From the database (retrain_runs), so every instance reports the same and a restart forgets nothing:
    // "the last run failed" outlives the process that ran it.
    retrainLastRun: new Gauge({
      name: 'sibyl_retrain_last_run_timestamp_seconds',
      help: 'When the last scheduled retraining run of the strategy with this result finished (unix seconds; any instance), read from the database at scrape time',
      labelNames: ['strategy', 'result'] as const,
      registers: [registry],
      async collect() {
        if (!retrainRuns.source) return;
        const runs = await retrainRuns.source().catch(() => undefined);
        if (!runs) return;
        this.reset();
        for (const run of runs) this.set({ strategy: run.strategy, result: run.status }, run.finishedAt.getTime() / 1000);
      },
    }),
    driftWindowEndSeconds: new Gauge({
      name: 'sibyl_drift_window_end_seconds',
      help: 'End of the window (unix seconds) the drift gauges of a model version describe',
      labelNames: ['strategy', 'version'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
