import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { migrateToLatest, openDatabase } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { HistoryRepository, type HistoryRow } from '../../src/modules/history/index.js';
import { runCliInProcess } from '../helpers/cli.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

const silent = createLogger({ level: 'silent', format: 'json' });

/** `npm run outcomes` (in this process, test/helpers/cli.ts): its output, exit codes and what it stores. */
describe(`npm run outcomes (${stackName})`, () => {
  let target: TestDatabase;
  const cli = (args: string[]) => runCliInProcess('outcomes', args, { ...target.env, LOG_LEVEL: 'warn' });

  before(async () => {
    target = await createTestDatabase();
  });
  after(async () => target?.drop());

  test('with no bars stored it says why there is nothing to do, and exits 0', async () => {
    const { code, stdout } = await cli([]);
    assert.equal(code, 0);
    assert.match(stdout, /no bars stored/);
  });

  test('resolves due outcomes from stored bars, prints a summary, and a second run finds nothing new', async () => {
    const market = createSyntheticMarket({ symbols: ['CA', 'CB'], seed: 2, historyBars: 30, startTime: new Date('2024-01-01T00:00:00Z') });
    const bars = await market.fetchBars(['CA', 'CB'], { lookback: 30 });
    const rows: HistoryRow[] = [...bars.values()].flatMap((list) =>
      list.map((bar, i) => ({
        time: bar.time,
        symbol: bar.symbol,
        strategy: 'direction-5d',
        modelVersion: 'v1',
        horizon: '5d',
        probability: 0.6,
        confidence: 0.6,
        signal: 'BUY' as const,
        expectedReturn: null,
        intervalLevel: 0.95,
        intervalLow: bar.close * 0.9,
        intervalHigh: bar.close * 1.1,
        featuresHash: `c${i}`,
        marketSource: 'stored',
      })),
    );
    const database = await openDatabase(target.settings, silent);
    try {
      await migrateToLatest(database.db);
      await new BarsRepository(database.db).upsert([...bars.values()].flat());
      await new HistoryRepository(database.db).insertMany(rows);
    } finally {
      await database.close();
    }

    const first = await cli([]);
    assert.equal(first.code, 0, first.stderr);
    // 30 bars per symbol, horizon 5: 25 rows each are due, 5 are not.
    assert.match(first.stdout, /symbols\s+rows read\s+resolved\s+not due/);
    assert.match(first.stdout, /\n\s*2\s+60\s+50\s+10\s+0\s+0\s/);
    assert.match(first.stderr, /\[2\/2 symbols\] 50 outcomes stored/);

    const second = await cli(['CA']);
    assert.equal(second.code, 0);
    assert.match(second.stdout, /\n\s*1\s+5\s+0\s+5\s+0\s+0\s/);

    const check = await openDatabase(target.settings, silent);
    try {
      const resolved = await check.db.selectFrom('prediction_outcomes').select(['realized_return', 'correct', 'covered']).execute();
      assert.equal(resolved.length, 50);
      assert.ok(resolved.every((r) => typeof r.correct === 'boolean' && typeof r.covered === 'boolean'));
    } finally {
      await check.close();
    }
  });

  test('a bad argument is refused with usage, exit 1', async () => {
    const { code, stderr } = await cli(['not-a-symbol']);
    assert.equal(code, 1);
    assert.match(stderr, /usage: npm run outcomes/);
  });
});
