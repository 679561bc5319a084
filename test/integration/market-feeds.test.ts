import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { createIngestFeed, InvalidBarsError } from '../../src/infra/market-data/feed.js';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createReplay } from '../../src/infra/market-data/replay.js';
import { createTestDatabase, stackName, type TestDatabase } from '../helpers/services.js';

const DAY_MS = 86_400_000;
const START = Date.UTC(2020, 0, 1);

/** Daily bars on the given day numbers (days after 2020-01-01), priced by day. */
function bars(symbol: string, days: readonly number[], source = 'test'): Bar[] {
  return days.map((d) => ({
    symbol,
    time: new Date(START + d * DAY_MS),
    open: 100 + d,
    high: 101 + d,
    low: 99 + d,
    close: 100 + d,
    adjClose: 100 + d,
    volume: 1000,
    source,
  }));
}

describe(`market feeds over the bars store (${stackName})`, () => {
  let target: TestDatabase;
  let database: Database;
  let repository: BarsRepository;
  before(async () => {
    target = await createTestDatabase();
    database = await openDatabase(target.settings, createLogger({ level: 'silent', format: 'json' }));
    await migrateToLatest(database.db);
    repository = new BarsRepository(database.db);
  });
  after(async () => {
    await database.close();
    await target.drop();
  });
  beforeEach(async () => {
    await sql`truncate market_bars`.execute(database.db);
  });

  test('nextBars: the bars at the earliest stored time after a moment, over the given symbols', async () => {
    // A trades on days 0-5 except 3; B on 0-5 except 2 (a holiday on one exchange, say).
    await repository.upsert([...bars('A', [0, 1, 2, 4, 5]), ...bars('B', [0, 1, 3, 4, 5])]);
    const at = (day: number) => new Date(START + day * DAY_MS);
    const times = (list: Bar[]) => list.map((b) => `${b.symbol}@${(b.time.getTime() - START) / DAY_MS}`);
    assert.deepEqual(times(await repository.nextBars(['A', 'B'], at(0))), ['A@1', 'B@1']);
    assert.deepEqual(times(await repository.nextBars(['A', 'B'], at(1))), ['A@2']);
    assert.deepEqual(times(await repository.nextBars(['A', 'B'], at(2))), ['B@3']);
    assert.deepEqual(times(await repository.nextBars(['B'], at(3))), ['B@4']);
    assert.deepEqual(await repository.nextBars(['A', 'B'], at(5)), []);
    assert.deepEqual(await repository.nextBars([], at(0)), []);
  });

  test('replay: the provider sees the market as of the clock, each tick moves it one stored bar time, nothing is written', async () => {
    await repository.upsert([...bars('A', [0, 1, 2, 3, 4]), ...bars('B', [0, 1, 2, 3, 4])]);
    const stored = await repository.countBars();
    let finished: Date | undefined;
    const replay = createReplay({ repository, from: new Date(START + 1 * DAY_MS), tickMs: 20, onFinished: (clock) => (finished = clock) });
    const before = await replay.provider.fetchBars(['A'], { lookback: 10 });
    assert.deepEqual(
      before.get('A')!.map((b) => b.close),
      [100, 101],
      'nothing after the clock is visible',
    );
    // A caller asking for a later `until` still cannot see past the clock.
    assert.equal((await replay.provider.fetchBars(['A'], { lookback: 10, until: new Date(START + 4 * DAY_MS) })).get('A')!.length, 2);

    const announced: string[][] = [];
    await new Promise<void>((resolve) => {
      replay.feed.start((list) => {
        announced.push(list.map((b) => `${b.symbol}@${b.close}`));
        if (announced.length === 3) resolve();
      });
    });
    assert.deepEqual(announced, [
      ['A@102', 'B@102'],
      ['A@103', 'B@103'],
      ['A@104', 'B@104'],
    ]);
    // The provider serves what was announced (the contract feeds keep).
    assert.equal((await replay.provider.fetchBars(['B'], { lookback: 1 })).get('B')![0]!.close, 104);
    const deadline = Date.now() + 2_000;
    while (!finished && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(finished?.getTime(), START + 4 * DAY_MS, 'the replay stops at the last stored bar');
    await replay.feed.stop();
    assert.equal(await repository.countBars(), stored, 'replay never writes');
  });

  test('ingest: a vendor’s bars are written to the store, then announced; a refused batch announces nothing', async () => {
    const feed = createIngestFeed('vendor', repository);
    const announced: Bar[][] = [];
    feed.start((list) => announced.push([...list]));
    await feed.ingest(bars('A', [0, 1]));
    assert.equal(await repository.countBars(), 2);
    assert.equal(announced.length, 1);
    // A correction replaces the stored bar.
    await feed.ingest([{ ...bars('A', [1])[0]!, close: 101.5 }]);
    assert.equal((await repository.fetchBars(['A'], { lookback: 1 })).get('A')![0]!.close, 101.5);
    // The serving rules refuse a bar whose high is below its low: nothing stored, nothing announced.
    await assert.rejects(feed.ingest([{ ...bars('A', [2])[0]!, high: 1, low: 2 }]), InvalidBarsError);
    assert.equal(announced.length, 2);
    assert.equal(await repository.countBars(), 2);
    await feed.stop();
  });

  test('ingest applies the import’s serving rules: extremes, future dates and jumps from the stored bar refuse the whole batch', async () => {
    const feed = createIngestFeed('vendor', repository);
    const announced: Bar[][] = [];
    feed.start((list) => announced.push([...list]));
    await feed.ingest(bars('A', [0, 1]));
    const [good] = bars('B', [2]);
    const attacks: Array<[Bar, RegExp]> = [
      [{ ...bars('A', [2])[0]!, open: 1e308, high: 1e308, close: 1e308, adjClose: 1e308 }, /#1 A: open 1e\+308 is outside/],
      [{ ...bars('A', [2])[0]!, open: 1e-320, low: 1e-320, close: 1e-320, adjClose: 1e-320 }, /#1 A: open 1e-320 is outside/],
      [{ ...bars('A', [2])[0]!, time: new Date('2099-12-31T00:00:00Z') }, /#1 A: date 2099-12-31 is in the future/],
      // Day 2 after the stored day-1 close of 101: a 20× step, found against the store, not the batch.
      [
        { ...bars('A', [2])[0]!, high: 2100, close: 2020, adjClose: 2020 },
        /#1 A: adjusted close 2020 is 20× the previous bar's 101 \(2020-01-02\)/,
      ],
    ];
    for (const [bad, reason] of attacks) {
      await assert.rejects(
        feed.ingest([good!, bad]),
        (error: unknown) => error instanceof InvalidBarsError && error.refused.length === 1 && reason.test(error.message),
      );
    }
    assert.equal(await repository.countBars(), 2, 'nothing of a refused batch is stored, not even its good bar');
    assert.equal(announced.length, 1);
    await feed.ingest([good!, bars('A', [2])[0]!]);
    assert.equal(await repository.countBars(), 4);
    await feed.stop();
  });
});
