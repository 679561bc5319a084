import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { manifestSchema } from '../../src/domain/manifest.js';
import { PredictionsDocument, StrategiesDocument } from '../generated/graphql.js';
import { startTestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { projectRoot } from '../helpers/process.js';
import { createTestDatabase, stackName, tempDir } from '../helpers/services.js';

const run = promisify(execFile);
const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');

/** The offline-to-online path on a slice of the real data: import, train, serve, with the real CLIs. */
test(`real data (${stackName}): three stocks are imported, train a model, and are served by it`, async () => {
  assert.ok(
    existsSync(dailyAdjusted),
    `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA to the folder holding daily_adjusted/)`,
  );
  const work = tempDir();
  const database = await createTestDatabase();
  try {
    const csvDir = path.join(work.dir, 'csv');
    mkdirSync(csvDir);
    const files = readdirSync(dailyAdjusted).filter((f) => /^DA-(AAPL|JPM|XOM)-T-/.test(f));
    assert.equal(files.length, 3);
    for (const f of files) copyFileSync(path.join(dailyAdjusted, f), path.join(csvDir, f));
    const env = { PATH: process.env.PATH ?? '', ...database.env };

    const imported = await run(process.execPath, ['--import', 'tsx', 'src/cli/import.ts', csvDir], { cwd: projectRoot, env });
    assert.match(imported.stdout, /\b3 +16206 +16206 +0 +0\b/);

    const modelsDir = path.join(work.dir, 'models');
    const trained = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/train.ts', '--strategy', 'direction-1d', '--data', 'db', '--out', modelsDir, '--version', 'slice'],
      { cwd: projectRoot, env },
    );
    assert.match(trained.stdout, /direction-1d slice/);
    assert.match(trained.stdout, /verdict +(better|no better|worse) than the base rate/);
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(path.join(modelsDir, 'direction-1d/slice/manifest.json'), 'utf8')));
    assert.deepEqual(manifest.data.symbols, ['AAPL', 'JPM', 'XOM']);
    assert.equal(manifest.data.bars, 3 * 5402);
    assert.equal(manifest.offlineMetrics.period.from, '2018-01-01');
    assert.ok(manifest.offlineMetrics.sampleSize > 2_000, `held-out samples: ${manifest.offlineMetrics.sampleSize}`);

    const server = await startTestGateway({ MODELS_DIR: modelsDir }, { database });
    try {
      const { data: strategies } = await execute(server.url, StrategiesDocument);
      assert.deepEqual(
        strategies!.strategies.map((s) => `${s.name}@${s.activeVersion.version}`),
        ['direction-1d@slice'],
      );
      const { data, errors } = await execute(server.url, PredictionsDocument, { symbols: ['AAPL', 'JPM', 'XOM', 'MSFT'] });
      assert.deepEqual(
        data!.predictions.slice(0, 3).map((p) => [p!.symbol, p!.asOf, p!.quote.source, p!.model.version]),
        [
          ['AAPL', '2021-04-21T00:00:00.000Z', 'alphavantage', 'slice'],
          ['JPM', '2021-04-21T00:00:00.000Z', 'alphavantage', 'slice'],
          ['XOM', '2021-04-21T00:00:00.000Z', 'alphavantage', 'slice'],
        ],
      );
      assert.equal(data!.predictions[3], null, 'MSFT was not imported: with bars stored, nothing is invented');
      assert.equal(errors?.[0]?.extensions?.code, 'UNKNOWN_SYMBOL');
    } finally {
      await server.close(); // also drops the database
    }
  } finally {
    work.remove();
  }
});
