import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { BarsRepository } from '../../src/infra/market-data/bars-repository.js';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import { findCsvFiles, importFiles, type ImportProgress } from '../../src/infra/market-data/importer.js';
import { projectRoot } from '../helpers/process.js';
import { createTestDatabase, stackName, tempDir, type TestDatabase } from '../helpers/services.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const SLICE_ROWS = 300;
const REAL_FILES = ['DA-AAPL-T-2021-04-21.csv', 'DA-BRK.B-T-2021-04-21.csv'];

/** A Yahoo file of 6 rows: 3 good, 3 bad (lines 3, 5 and 7). */
const YAHOO_CSV = [
  'Date,Open,High,Low,Close,Adj Close,Volume',
  '2021-04-19,10,11,9,10.5,10.4,1000',
  '2021-04-20,null,null,null,null,null,null',
  '2021-04-21,10.5,12,10,11,10.9,1200',
  '2021-04-22,11,10,12,11,11,900',
  '2021-04-23,11,11.5,10.8,11.2,11.1,800',
  '2021-04-26,11,11.5,10.8,11.2,11.1,-1',
].join('\n');

/**
 * The first rows of two real Alpha Vantage files (copied to a temp dir, never into the repository),
 * a generated Yahoo file with bad rows, and a file in no known layout, in nested directories.
 */
function writeInputs(dir: string): void {
  if (!existsSync(path.join(marketData, 'daily_adjusted'))) {
    assert.fail(
      `market data not found: looked for ${path.join(marketData, 'daily_adjusted')} (set SIBYL_MARKET_DATA to the folder holding daily_adjusted/)`,
    );
  }
  mkdirSync(path.join(dir, 'alphavantage'));
  mkdirSync(path.join(dir, 'yahoo', 'nested'), { recursive: true });
  for (const name of REAL_FILES) {
    const lines = readFileSync(path.join(marketData, 'daily_adjusted', name), 'utf8').split('\n');
    writeFileSync(path.join(dir, 'alphavantage', name), `${lines.slice(0, SLICE_ROWS + 1).join('\n')}\n`);
  }
  writeFileSync(path.join(dir, 'yahoo', 'nested', 'TEST.csv'), `${YAHOO_CSV}\n`);
  writeFileSync(path.join(dir, 'yahoo', 'notes.csv'), 'these are not prices\n');
  writeFileSync(path.join(dir, 'yahoo', 'README.txt'), 'not a csv: never read\n');
}

describe(`import (${stackName})`, () => {
  const inputs = tempDir('sibyl-import-');
  let target: TestDatabase;
  let database: Database;

  before(async () => {
    writeInputs(inputs.dir);
    target = await createTestDatabase();
    database = await openDatabase(target.settings, logger);
    await migrateToLatest(database.db);
  });
  after(async () => {
    await database?.close();
    await target?.drop();
    inputs.remove();
  });

  test('imports real and Yahoo files, reporting rejected rows and refused files, then re-imports without duplicates', async () => {
    const progress: ImportProgress[] = [];
    const first = await importFiles(database.db, [inputs.dir], { batchSize: 128, onProgress: (p) => progress.push(p) });
    const good = 2 * SLICE_ROWS + 3;
    assert.equal(first.outcome, 'partial');
    assert.deepEqual(
      first.files.map((f) => [path.relative(inputs.dir, f.file), f.symbol, f.format, f.rows, f.inserted, f.rejected]),
      [
        ['alphavantage/DA-AAPL-T-2021-04-21.csv', 'AAPL', 'alphavantage', SLICE_ROWS, SLICE_ROWS, 0],
        ['alphavantage/DA-BRK.B-T-2021-04-21.csv', 'BRK.B', 'alphavantage', SLICE_ROWS, SLICE_ROWS, 0],
        ['yahoo/nested/TEST.csv', 'TEST', 'yahoo', 6, 3, 3],
        ['yahoo/notes.csv', undefined, undefined, 0, 0, 0],
      ],
    );
    assert.match(first.files[3]?.refused ?? '', /^unknown header/);
    assert.deepEqual([first.rows, first.inserted, first.updated], [good + 3, good, 0]);
    assert.deepEqual(
      first.rejections.map((r) => `${path.basename(r.file)}:${r.line}`),
      ['TEST.csv:3', 'TEST.csv:5', 'TEST.csv:7'],
    );

    // Progress: several batches per real file (300 rows, batches of 128), each file finished once, in order.
    const finished = progress.filter((p) => p.finished);
    assert.deepEqual(
      finished.map((p) => p.fileIndex),
      [0, 1, 2, 3],
    );
    assert.equal(progress.filter((p) => p.fileIndex === 0 && !p.finished).length, 3);
    assert.equal(progress.at(-1)?.rowsStored, good);

    const bars = new BarsRepository(database.db);
    assert.deepEqual(await bars.listSymbols(), ['AAPL', 'BRK.B', 'TEST']);
    const aapl = (await bars.fetchBars(['AAPL'], { lookback: 1, until: new Date('1999-11-01T00:00:00Z') })).get('AAPL');
    assert.deepEqual(aapl, [
      {
        symbol: 'AAPL',
        time: new Date('1999-11-01T00:00:00Z'),
        open: 80,
        high: 80.69,
        low: 77.37,
        close: 77.62,
        adjClose: 0.596878742448,
        volume: 2487300,
        source: 'alphavantage',
        quality: [],
      },
    ]);

    const again = await importFiles(database.db, [inputs.dir]);
    assert.deepEqual([again.rows, again.inserted, again.updated, again.rejections.length], [good + 3, 0, good, 3]);
    assert.equal(await bars.countBars(), good);
  });

  test('a missing path fails before anything is imported', async () => {
    const before = await new BarsRepository(database.db).countBars();
    await assert.rejects(
      importFiles(database.db, [inputs.dir, path.join(inputs.dir, 'missing')]),
      /cannot read .*missing: no such file or directory/,
    );
    assert.equal(await new BarsRepository(database.db).countBars(), before);
  });

  test('the CLI imports into the configured database, exits 2 with rejected rows and prints a summary', async () => {
    // PGlite allows one process per data directory, so the CLI gets this database while it is closed
    // here (reusing it also spares a second fresh PGlite, which takes seconds to create).
    await database.close();
    const run = await runCli([inputs.dir], target.env);
    database = await openDatabase(target.settings, logger);
    assert.equal(run.code, 2, run.stderr);
    // The earlier test stored these rows already: the CLI's run is a re-import.
    assert.match(
      run.stdout,
      /^files\s+rows read\s+inserted\s+updated\s+rejected\s+elapsed\s+rows\/s\n\s+4\s+606\s+0\s+603\s+3\s+[\d.]+ s\s+\d+\n/,
    );
    assert.match(run.stdout, /\n1 file\(s\) refused:\n {2}.*notes\.csv: unknown header/);
    assert.match(
      run.stdout,
      /\n3 row\(s\) rejected:\n {2}.*TEST\.csv:3: "null" values.*\n {2}.*TEST\.csv:5: low 12 is above high 10\n {2}.*TEST\.csv:7: Volume must not be negative/,
    );
    // Not a terminal: one progress line per file on stderr.
    assert.equal(run.stderr.split('\n').filter((line) => /^\[\d\/4\] /.test(line)).length, 4, run.stderr);
    assert.equal(await new BarsRepository(database.db).countBars(), 603);
  });

  test('the CLI rejects bars it could not serve (issue 17) and lists every one with file:line and reason', async () => {
    const hostile = tempDir('sibyl-import-hostile-');
    try {
      const evil = path.join(hostile.dir, 'EVIL.csv');
      writeFileSync(
        evil,
        [
          'Date,Open,High,Low,Close,Adj Close,Volume',
          '2021-04-19,10,11,9,10.5,10.4,1000', //                      2 good
          '2021-04-20,1e308,1e308,1e308,1e308,1e308,1000', //          3
          '2021-04-21,1e-320,1e-320,1e-320,1e-320,1e-320,1000', //     4
          '2021-04-22,1e308,1e308,1e308,1e308,1e308,1000', //          5
          `2021-04-23,${'1,'.repeat(1_000_000)}`, //                   6 a 2 MB line
          '2021-04-26,10,11,9,10.5,10.6,1000', //                      7 good
          '2099-12-31,10,11,9,10.5,10.6,1000', //                      8
        ].join('\n') + '\n',
      );
      await database.close();
      const run = await runCli([hostile.dir], target.env);
      database = await openDatabase(target.settings, logger);
      assert.equal(run.code, 2, run.stderr);
      const listed = run.stdout.split('\n').filter((line) => line.includes('EVIL.csv:'));
      assert.deepEqual(
        listed
          .map((line) => /EVIL\.csv:(\d+): (.*)$/.exec(line)?.slice(1, 3))
          .map((m) => [Number(m?.[0]), m?.[1]?.split(' ').slice(0, 3).join(' ')]),
        [
          [3, 'open 1e+308 is'],
          [4, 'open 1e-320 is'],
          [5, 'open 1e+308 is'],
          [6, 'line is 2000011'],
          [8, 'date 2099-12-31 is'],
        ],
        run.stdout,
      );
      assert.match(run.stdout, /\n5 row\(s\) rejected:\n/);
      const stored = (await new BarsRepository(database.db).fetchBars(['EVIL'], { lookback: 10 })).get('EVIL');
      assert.deepEqual(
        stored?.map((b) => [b.time.toISOString().slice(0, 10), b.close]),
        [
          ['2021-04-19', 10.5],
          ['2021-04-26', 10.5],
        ],
      );
    } finally {
      hostile.remove();
    }
  });

  test('every row of the real data set passes the serving rules, flat vendor bars and zero volumes included', async () => {
    // Read with the importer's own reader and rules, without the database: storing 320k rows would
    // take 20 s on PGlite and proves nothing more (the CLI import of the whole set: 320,674 inserted).
    const files = await findCsvFiles([path.join(marketData, 'daily_adjusted')]);
    assert.equal(files.length, 61);
    let accepted = 0;
    let flat = 0;
    let zeroVolume = 0;
    const rejected: string[] = [];
    for (const file of files) {
      const parsed = await readBarsCsvFile(file);
      assert.ok(parsed.ok, file);
      accepted += parsed.bars.length;
      flat += parsed.bars.filter((b) => b.open === b.high && b.high === b.low && b.low === b.close).length;
      zeroVolume += parsed.bars.filter((b) => b.volume === 0).length;
      rejected.push(...parsed.rejected.map((r) => `${path.basename(r.file)}:${r.line}: ${r.reason}`));
    }
    assert.deepEqual(rejected, []);
    assert.equal(accepted, 320_674, 'every row SOURCE.md counts');
    assert.equal(flat, 33, 'the 33 flat vendor bars SOURCE.md lists');
    assert.ok(zeroVolume >= 3, `GILD's zero-volume days (${zeroVolume})`);
  });

  test('the CLI without arguments prints its usage and exits 1', async () => {
    const usage = await runCli([], target.env);
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /^usage: npm run import -- <file\.csv \| directory>/);
  });
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/import.ts', ...args], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
