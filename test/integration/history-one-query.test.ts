import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execute, parse } from 'graphql';
import type { KyselyPlugin } from 'kysely';
import { createContextFactory } from '../../src/context/context.js';
import { createMemoryCache } from '../../src/infra/cache/memory.js';
import { CacheTier } from '../../src/infra/cache/tier.js';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createOnnxEngine } from '../../src/infra/inference/onnx.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { ApiKeysRepository, ApiKeysService, Role } from '../../src/modules/access/index.js';
import { AuditLog } from '../../src/modules/audit/index.js';
import { ExplanationService, ExplanationsRepository } from '../../src/modules/explanations/index.js';
import { HealthService } from '../../src/modules/health/index.js';
import { HistoryQueryService, HistoryReadRepository, historyRollupsOf, HistoryRepository } from '../../src/modules/history/index.js';
import { MetricsRepository, MetricsService } from '../../src/modules/metrics/index.js';
import { ModelRegistry, ModelsService } from '../../src/modules/models/index.js';
import { PointInTimePredictions, PredictionService, type CachedFeatures } from '../../src/modules/predictions/index.js';
import { buildGatewaySchema } from '../../src/schema/build-schema.js';
import { projectRoot } from '../helpers/process.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

/**
 * The claim "Prediction.history is ONE SQL query for all symbols of a request", checked through the
 * real schema (resolvers, per-request DataLoaders from the real context factory) executing against a
 * real database whose every statement is counted by a Kysely plugin.
 */
describe(`Prediction.history costs one SQL statement per request (${stackName})`, () => {
  const silent = createLogger({ level: 'silent', format: 'json' });
  const symbols = Array.from({ length: 12 }, (_, i) => `L${String(i).padStart(2, '0')}`);
  let target: TestDatabase;
  let database: Database;
  let registry: ModelRegistry;
  let statements = 0;

  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, silent);
    await migrateToLatest(database.db);
    registry = await ModelRegistry.load({
      directory: path.join(projectRoot, 'models'),
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 256, maxQueueDelayMs: 0 },
      logger: silent,
    });
  });
  after(async () => {
    await registry?.close();
    await database?.close();
    await target?.drop();
  });

  test('predictions ×12 with history(last: 4) under two strategies: exactly one statement', async () => {
    const market = createSyntheticMarket({ symbols, seed: 3, historyBars: 130, startTime: new Date('2024-01-01T00:00:00Z') });
    const cache = createMemoryCache();
    const none = () => undefined;
    const predictions = new PredictionService({
      market,
      registry,
      caches: {
        market: new CacheTier<Bar[]>(cache, 'm', 0, none),
        features: new CacheTier<CachedFeatures>(cache, 'f', 0, none),
        predictions: new CacheTier<number>(cache, 'p', 0, none),
      },
      maxSymbolsPerRequest: 200,
      logger: silent,
    });
    // Record a few predictions per symbol, as earlier requests would have: one per bar of the last 5 bars.
    const writes = new HistoryRepository(database.db);
    for (let back = 5; back >= 1; back--) {
      const bars = await market.fetchBars(symbols, { lookback: 130 });
      await writes.insertMany(
        [...bars.values()].flatMap((list) => {
          const bar = list[list.length - back]!;
          return ['direction-1d', 'direction-5d'].map((strategy) => ({
            time: bar.time,
            symbol: bar.symbol,
            strategy,
            modelVersion: 'v1',
            horizon: strategy.slice(-2),
            probability: 0.5 + back / 100,
            confidence: 0.5 + back / 100,
            signal: 'HOLD' as const,
            expectedReturn: null,
            intervalLevel: 0.95,
            intervalLow: 1,
            intervalHigh: 2,
            featuresHash: `b${back}`,
            marketSource: 'stored',
          }));
        }),
      );
    }

    const counted = database.db.withPlugin({
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        statements++;
        return args.result;
      },
    } satisfies KyselyPlugin);
    const history = new HistoryQueryService({
      repository: new HistoryReadRepository(counted, { rollups: historyRollupsOf(database) }),
      market,
      maxSymbolsPerRequest: 200,
      servingMarket: 'stored',
    });
    const explanations = new ExplanationService({ outcomes: new ExplanationsRepository(database.db, 'stored'), logger: silent });
    const pointInTime = new PointInTimePredictions({ market, registry, logger: silent });
    // `history` is analyst-only (@Authorized); the caller is one, as the authenticator would say.
    const analyst = { principal: { id: 'test', name: 'test', role: Role.Analyst, via: 'apikey' as const }, clientAddress: '127.0.0.1' };
    const models = new ModelsService({ registry });
    const schema = await buildGatewaySchema({
      health: new HealthService({ checks: [], version: 'test' }),
      predictions,
      models,
      history,
      metrics: new MetricsService({ repository: new MetricsRepository(database.db), activeVersion: () => 'v1', servingMarket: 'stored' }),
      apiKeys: new ApiKeysService({ repository: new ApiKeysRepository(database.db), audit: new AuditLog(database.db) }),
    });
    const context = createContextFactory({ predictions, pointInTime, history, explanations, models })({
      requestId: 't',
      logger: silent,
      transport: 'http',
      ...analyst,
    });
    const document = parse(`query($symbols: [String!]!) {
      one: predictions(symbols: $symbols, strategy: "direction-1d") { symbol history(last: 4) { time confidence } }
      five: predictions(symbols: $symbols, strategy: "direction-5d") { symbol history(last: 4) { time confidence } }
      single: prediction(symbol: "L00") { history(last: 2) { time } }
    }`);
    statements = 0;
    const result = await execute({ schema, document, variableValues: { symbols }, contextValue: context });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(statements, 1, `${statements} SQL statements for 25 history fields`);
    const data = result.data as {
      one: Array<{ symbol: string; history: Array<{ confidence: number }> }>;
      five: unknown[];
      single: { history: unknown[] };
    };
    assert.equal(data.one.length, 12);
    for (const p of data.one)
      assert.deepEqual(
        p.history.map((h) => h.confidence),
        [0.54, 0.53, 0.52, 0.51],
      );
    assert.equal(data.single.history.length, 2);

    // And a second request gets its own loaders: one more statement, not a cached answer.
    statements = 0;
    const again = await execute({
      schema,
      document,
      variableValues: { symbols },
      contextValue: createContextFactory({ predictions, pointInTime, history, explanations, models })({
        requestId: 'u',
        logger: silent,
        transport: 'http',
        ...analyst,
      }),
    });
    assert.equal(again.errors, undefined);
    assert.equal(statements, 1);
  });
});
