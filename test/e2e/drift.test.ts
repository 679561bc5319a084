import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { importFiles } from '../../src/infra/market-data/importer.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { DriftDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute, postQuery } from '../helpers/graphql.js';
import { projectRoot } from '../helpers/process.js';
import { createTestDatabase, stackName } from '../helpers/services.js';

const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');
const SYMBOLS = ['AAPL', 'JPM', 'XOM', 'MSFT', 'KO', 'PFE', 'WMT', 'INTC', 'CSCO', 'HD'];
const YEAR_2020 = { from: '2020-01-01T00:00:00.000Z', to: '2020-12-31T00:00:00.000Z' };

/**
 * `drift` on real bars: ten stocks imported in place from ../shared/data/market (read, never copied)
 * through the bars store of the stack under test, measured by the committed active 1d model.
 */
describe(`drift on real data (${stackName})`, () => {
  let server: TestGateway;

  before(async () => {
    assert.ok(
      existsSync(dailyAdjusted),
      `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA to the folder holding daily_adjusted/)`,
    );
    const files = readdirSync(dailyAdjusted)
      .filter((f) => SYMBOLS.some((s) => f.startsWith(`DA-${s}-T-`)))
      .map((f) => path.join(dailyAdjusted, f));
    assert.equal(files.length, SYMBOLS.length);
    const database = await createTestDatabase();
    const direct = await openDatabase(database.settings, createLogger({ level: 'silent', format: 'json' }));
    try {
      await migrateToLatest(direct.db);
      await importFiles(direct.db, files);
    } finally {
      await direct.close();
    }
    server = await startTestGateway({ MODELS_DIR: path.join(projectRoot, 'models') }, { database });
  });

  after(async () => {
    await server?.close();
  });

  test('answers for the active 1d model over 2020 and flags the volatility features in March 2020', async () => {
    const started = performance.now();
    const { data, errors } = await execute(server.url, DriftDocument, { strategy: 'direction-1d', window: YEAR_2020 });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(errors, undefined, JSON.stringify(errors));
    const drift = data!.drift;
    assert.equal(drift.version, server.gateway.registry.active('direction-1d')!.manifest.version);
    assert.deepEqual(drift.symbols, [...SYMBOLS].sort());
    assert.equal(drift.days, 253, 'NYSE trading days in 2020');
    assert.equal(drift.samples, 253 * SYMBOLS.length);
    assert.deepEqual(drift.thresholds, { watch: 0.1, drifted: 0.25 });
    assert.equal(drift.features.length, 13);
    assert.deepEqual(
      drift.features.filter((f) => !(f.psi >= 0 && f.ks >= 0 && f.ks <= 1)),
      [],
    );

    const march = drift.months.find((m) => m.month === '2020-03')!;
    assert.equal(drift.months.length, 12);
    const psiOf = (name: string) => march.features.find((f) => f.name === name)!.psi;
    assert.ok(march.drifted.includes('vol_20d'), `March 2020 drifted: ${march.drifted.join(', ')}`);
    assert.ok(march.drifted.includes('hl_range'), `March 2020 drifted: ${march.drifted.join(', ')}`);
    assert.ok(psiOf('vol_20d') > 1, `vol_20d PSI in March 2020: ${psiOf('vol_20d')}`);
    // Upward: March's typical volatility is a multiple of training's. The daily range peaks in March;
    // the trailing 20-day volatility, which still holds late March in April, in March or April.
    for (const name of ['vol_20d', 'hl_range']) {
      const f = march.features.find((v) => v.name === name)!;
      assert.ok(f.recentMedian! > 2 * f.referenceMedian!, `${name}: March median ${f.recentMedian}, training ${f.referenceMedian}`);
    }
    const ranked = (name: string) =>
      drift.months.map((m) => [m.month, m.features.find((f) => f.name === name)!.psi] as const).sort((a, b) => b[1] - a[1]);
    assert.equal(ranked('hl_range')[0]![0], '2020-03', JSON.stringify(ranked('hl_range')));
    assert.ok(['2020-03', '2020-04'].includes(ranked('vol_20d')[0]![0]), JSON.stringify(ranked('vol_20d')));

    // Older committed manifests: the featureStats bins for features; the probability reference is
    // derived from the stored training-period bars of these ten symbols.
    const manifest = server.gateway.registry.active('direction-1d')!.manifest;
    assert.equal(drift.reference.features, 'stored-bars');
    if (!manifest.driftReference) {
      assert.equal(drift.reference.probability, 'stored-bars');
      assert.ok(drift.reference.probabilitySamples > 30_000, `reference rows: ${drift.reference.probabilitySamples}`);
    }
    assert.ok(drift.probability, drift.probabilityReason ?? '');
    assert.equal(drift.realized.source, 'realized');
    assert.equal(drift.realized.sampleSize, 0, 'nothing was served and recorded in this test');
    console.log(
      `drift 2020, 10 symbols: ${seconds.toFixed(2)} s; March drifted: ${march.drifted.join(', ')}; ` +
        `vol_20d PSI year ${drift.features.find((f) => f.name === 'vol_20d')!.psi.toFixed(3)} March ${psiOf('vol_20d').toFixed(3)}; ` +
        `probability PSI ${drift.probability!.psi.toFixed(3)} KS ${drift.probability!.ks.toFixed(3)}`,
    );

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`sibyl_drift_psi\\{strategy="direction-1d",version="${drift.version}",feature="vol_20d"\\} [0-9.]+`));
    assert.match(metrics, /sibyl_drift_ks\{strategy="direction-1d",version="[^"]+",feature="probability"\}/);
  });

  test('a window in the past uses no later bar: the same answer with a window ending earlier as with the stored future', async () => {
    const march = { from: '2020-03-01T00:00:00.000Z', to: '2020-03-31T00:00:00.000Z' };
    const { data: whole } = await execute(server.url, DriftDocument, {
      strategy: 'direction-1d',
      window: YEAR_2020,
      symbols: ['AAPL', 'XOM'],
    });
    const { data: part, errors } = await execute(server.url, DriftDocument, {
      strategy: 'direction-1d',
      window: march,
      symbols: ['AAPL', 'XOM'],
    });
    assert.equal(errors, undefined, JSON.stringify(errors));
    const monthOfYear = whole!.drift.months.find((m) => m.month === '2020-03')!;
    assert.equal(part!.drift.samples, monthOfYear.samples);
    assert.deepEqual(
      part!.drift.features.map((f) => [f.name, f.psi, f.ks]),
      monthOfYear.features.map((f) => [f.name, f.psi, f.ks]),
    );
  });

  test('bounds and bad input are 4xx codes, never internal errors', async () => {
    const ask = async (variables: Record<string, unknown>) => {
      const response = await postQuery(server.url, DRIFT_CODES, variables);
      return response.errors?.[0]?.extensions?.code;
    };
    assert.equal(await ask({ window: { from: '2019-01-01T00:00:00Z', to: '2020-12-31T00:00:00Z' } }), 'BAD_USER_INPUT');
    assert.equal(await ask({ window: { from: '2020-12-31T00:00:00Z', to: '2020-01-01T00:00:00Z' } }), 'BAD_USER_INPUT');
    assert.equal(await ask({ window: YEAR_2020, symbols: ['AAPL', 'NOPE'] }), 'UNKNOWN_SYMBOL');
    assert.equal(await ask({ window: YEAR_2020, symbols: ['not a symbol'] }), 'BAD_USER_INPUT');
    assert.equal(await ask({ window: YEAR_2020, version: 'v999' }), 'BAD_USER_INPUT');
    assert.equal(await ask({ window: YEAR_2020, strategy: 'direction-2w' }), 'UNKNOWN_STRATEGY');
    assert.equal(await ask({ window: { from: '1990-01-01T00:00:00Z', to: '1990-02-01T00:00:00Z' } }), 'BAD_USER_INPUT');
  });
});

const DRIFT_CODES = /* GraphQL */ `
  query ($strategy: String! = "direction-1d", $version: String, $window: DateWindow!, $symbols: [String!]) {
    drift(strategy: $strategy, version: $version, window: $window, symbols: $symbols) {
      samples
    }
  }
`;
