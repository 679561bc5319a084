import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assessSeries } from '../../src/infra/market-data/bar-quality.js';
import { readBarsCsvFile } from '../../src/infra/market-data/csv.js';
import { runCliInProcess } from '../helpers/cli.js';
import { projectRoot } from '../helpers/process.js';
import { createTestDatabase, stackName, tempDir, type TestDatabase } from '../helpers/services.js';

const marketData = process.env.SIBYL_MARKET_DATA ?? path.resolve(projectRoot, '../shared/data/market');
const dailyAdjusted = path.join(marketData, 'daily_adjusted');

/** `npm run <file>` in this process (test/helpers/cli.ts); exit codes and streams as a command's. */
const cli = (file: string, args: string[], env: Record<string, string>) => runCliInProcess(file, args, env);

/** Two small Yahoo files: FQ with a flat bar (2021-04-14) and a missing session (2021-04-16), FR clean. */
function writeFixture(dir: string): void {
  const header = 'Date,Open,High,Low,Close,Adj Close,Volume';
  const fq = [
    '2021-04-12,10,10.2,9.9,10.1,10.1,1000',
    '2021-04-13,10.1,10.3,10,10.2,10.2,1100',
    '2021-04-14,10.2,10.2,10.2,10.2,10.2,900',
    '2021-04-15,10.2,10.4,10.1,10.3,10.3,1000',
    '2021-04-19,10.3,10.5,10.2,10.4,10.4,1000',
  ];
  const fr = ['2021-04-01,20,20.5,19.5,20.2,20.2,500', '2021-04-05,20.2,20.6,20,20.4,20.4,600'];
  writeFileSync(path.join(dir, 'FQ.csv'), `${[header, ...fq].join('\n')}\n`);
  writeFileSync(path.join(dir, 'FR.csv'), `${[header, ...fr].join('\n')}\n`);
}

describe(`npm run quality (${stackName})`, () => {
  const inputs = tempDir('sibyl-quality-cli-');
  let target: TestDatabase;

  before(async () => {
    writeFixture(inputs.dir);
    target = await createTestDatabase();
  });
  after(async () => {
    await target?.drop();
    inputs.remove();
  });

  test('bad arguments exit 2 with the usage; --help exits 0', async () => {
    const env = target.env;
    for (const args of [
      ['--reason', 'crash'],
      ['--symbol', 'lower'],
      ['--from', '2021-02-30'],
      ['--from', '2021-05-01', '--to', '2021-04-01'],
      ['--limit', '0'],
      ['--move-sigmas', '-3', inputs.dir],
      ['--move-sigmas', '3'],
    ]) {
      const run = await cli('quality', args, env);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^quality: .*\n\nusage: npm run quality/, args.join(' '));
    }
    const help = await cli('quality', ['--help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: npm run quality/);
  });

  test('on files: lists the flagged bars with why, progress per file, and a summary table; filters narrow the list', async () => {
    const run = await cli('quality', [inputs.dir], target.env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /\[1\/2\] FQ\.csv: FQ 5 bars, 2 flagged/);
    assert.match(run.stderr, /\[2\/2\] FR\.csv: FR 2 bars, 0 flagged/); // Good Friday 2021-04-02 is no gap
    assert.match(run.stdout, /FQ\s+2021-04-14\s+flat_price\s.*open = high = low = close = 10\.2 with volume 900/);
    assert.match(run.stdout, /FQ\s+2021-04-19\s+session_gap\s.*1 session\(s\) missing since 2021-04-15: 2021-04-16/);
    assert.match(run.stdout, /flat_price\s+1\s+excluded\s+excluded/);
    assert.match(run.stdout, /session_gap\s+1\s+excluded\s+excluded/);
    assert.match(run.stdout, /2 flagged bar\(s\) over 1 symbol\(s\)/);

    const narrowed = await cli('quality', ['--reason', 'session_gap', '--from', '2021-04-15', inputs.dir], target.env);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.doesNotMatch(narrowed.stdout, /2021-04-14/);
    assert.match(narrowed.stdout, /1 flagged bar\(s\) over 1 symbol\(s\)/);
  });

  test('on the database: lists what import stored, with the same filters', async () => {
    const imported = await cli('import', [inputs.dir], target.env);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /flagged \(stored, listed by npm run quality\): flat_price 1, session_gap 1/);
    const all = await cli('quality', [], target.env);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /FQ\s+2021-04-14\s+flat_price/);
    assert.match(all.stdout, /2 flagged bar\(s\) over 1 symbol\(s\)/);
    assert.match(all.stderr, /2 flagged bars read/);
    const none = await cli('quality', ['--symbol', 'FR'], target.env);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /0 flagged bar\(s\) over 0 symbol\(s\)/);
    const limited = await cli('quality', ['--limit', '1'], target.env);
    assert.match(limited.stdout, /… 1 more \(raise --limit to list them\)/);
  });
});

/**
 * The real data set, read in place: the rules find exactly the 33 flat vendor bars SOURCE.md lists
 * (30 with volume, 3 with none), no gap against the NYSE calendar and no bar off it.
 */
test('the 61 real files: the 33 flat bars of SOURCE.md are flagged, and no gap or off-calendar bar', async () => {
  assert.ok(existsSync(dailyAdjusted), `market data not found: looked for ${dailyAdjusted} (set SIBYL_MARKET_DATA)`);
  const source = readFileSync(path.join(marketData, 'SOURCE.md'), 'utf8');
  const section = source.slice(source.indexOf('1. **Single-price ("flat") bars'), source.indexOf('2. **Zero or near-zero volume'));
  const listed = new Set<string>();
  for (const match of section.matchAll(/^ {3}- ([A-Z.]+) ([\d, -]+)$/gm)) {
    for (const date of match[2]!.split(', ')) listed.add(`${match[1]} ${date.trim()}`);
  }
  assert.equal(listed.size, 33);

  const files = readdirSync(dailyAdjusted).filter((f) => f.endsWith('.csv'));
  assert.equal(files.length, 61);
  const flat = new Set<string>();
  const counts = new Map<string, number>();
  for (const file of files) {
    const parsed = await readBarsCsvFile(path.join(dailyAdjusted, file));
    assert.ok(parsed.ok);
    assert.equal(parsed.rejected.length, 0);
    // The flags import stores are the file's own assessment; assess again to check they agree.
    assert.deepEqual(
      parsed.bars.map((b) => b.quality),
      assessSeries(parsed.bars),
    );
    for (const bar of parsed.bars) {
      for (const flag of bar.quality ?? []) counts.set(flag, (counts.get(flag) ?? 0) + 1);
      const isFlat = bar.open === bar.high && bar.high === bar.low && bar.low === bar.close;
      if (isFlat && bar.quality?.some((f) => f === 'flat_price' || f === 'zero_volume'))
        flat.add(`${parsed.symbol} ${bar.time.toISOString().slice(0, 10)}`);
    }
  }
  assert.deepEqual([...flat].sort(), [...listed].sort());
  assert.equal(counts.get('flat_price'), 30);
  assert.equal(counts.get('zero_volume'), 3);
  assert.equal(counts.get('session_gap'), undefined);
  assert.equal(counts.get('off_calendar'), undefined);
  assert.ok((counts.get('large_move') ?? 0) > 0);
});
