import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCliInProcess } from '../helpers/cli.js';
import { projectRoot } from '../helpers/process.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npm run <script>` → its file in src/cli, and the name its error lines start with. */
const CLIS = [
  { script: 'import', file: 'import' },
  { script: 'train', file: 'train' },
  { script: 'models', file: 'models' },
  { script: 'keys', file: 'keys' },
  { script: 'outcomes', file: 'outcomes' },
  { script: 'backtest', file: 'backtest' },
  { script: 'migrate', file: 'migrate' },
  { script: 'schema', file: 'emit-schema' },
  { script: 'web:build', file: 'web-build' },
  { script: 'quality', file: 'quality' },
] as const;

/** A command as a user runs it, with the embedded database in `dataDir` (never DATABASE_URL). */
function spawned(command: string, args: string[], dataDir: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: projectRoot,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', DATA_DIR: dataDir },
        timeout: 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const LOCK_LINE = /^([a-z:]+): (the embedded database in .* is in use by process (\d+); .*)$/;

describe('every CLI in src/cli: --help, unknown flags, a held data directory', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sibyl-cli-help-'));
  const heldDir = path.join(root, 'held');
  const csv = path.join(root, 'bars.csv');
  let holder: ChildProcess | undefined;
  let held: Promise<number> | undefined;

  before(() => {
    writeFileSync(csv, 'date,open,high,low,close,volume\n');
    // Another process holds the embedded database, as a running gateway does (the lock is per process:
    // this one holding it would not be refused). Started here, awaited where needed: the in-process
    // --help runs go on meanwhile.
    holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { createPgliteDatabase } = await import('./src/infra/db/pglite.ts');
         await createPgliteDatabase({ dataDir: ${JSON.stringify(path.join(heldDir, 'pglite'))} });
         process.stdout.write('held\\n');
         setInterval(() => {}, 60_000);`,
      ],
      { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    held = new Promise<number>((resolve, reject) => {
      holder!.stdout!.once('data', () => resolve(holder!.pid!));
      holder!.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    held.catch(() => undefined); // reported by the tests that await it
  });
  after(() => {
    holder?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  test('--help prints usage on stdout and returns 0 without doing anything; --bogus returns 2 with one line and the usage on stderr', async () => {
    for (const { script, file } of CLIS) {
      const dataDir = path.join(root, `help-${file}`);
      const help = await runCliInProcess(file, ['--help'], { NODE_ENV: 'test', DATA_DIR: dataDir });
      assert.equal(help.code, 0, `${script} --help: ${help.stderr}`);
      assert.match(help.stdout, /^usage:/, `${script} --help stdout`);
      assert.equal(help.stderr, '', `${script} --help stderr`);

      const bogus = await runCliInProcess(file, ['--bogus'], { NODE_ENV: 'test', DATA_DIR: dataDir });
      assert.equal(bogus.code, 2, `${script} --bogus: ${bogus.stderr}`);
      assert.equal(bogus.stdout, '', `${script} --bogus stdout`);
      const [first, blank, usage] = bogus.stderr.split('\n');
      assert.ok(first!.startsWith(`${script}: Unknown option '--bogus'`), `${script} --bogus: ${first}`);
      assert.equal(blank, '');
      assert.match(usage!, /^usage/);
      assert.equal(existsSync(dataDir), false, `${script} created ${dataDir}`);
    }
  });

  test('every CLI that opens the database says the data directory is held in the same one line, exit 1', async () => {
    const holderPid = await held!;
    const env = { NODE_ENV: 'test', DATA_DIR: heldDir };
    const opening: Array<[file: string, name: string, argv: string[]]> = [
      ['keys', 'keys', ['list']],
      ['migrate', 'migrate', []],
      ['models', 'models', ['list']],
      ['quality', 'quality', []],
      ['import', 'import', [csv]],
      ['outcomes', 'outcomes', []],
      ['train', 'train', ['--strategy', 'direction-1d', '--data', 'db']],
      ['backtest', 'backtest', ['--from', '2020-01-02', '--to', '2020-12-31']],
    ];
    const reasons = new Set<string>();
    for (const [file, name, argv] of opening) {
      const run = await runCliInProcess(file, argv, env);
      assert.equal(run.code, 1, `${name}: ${run.stderr}`);
      assert.equal(run.stdout, '', name);
      const lines = run.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `${name}: expected one line, got:\n${run.stderr}`);
      const match = LOCK_LINE.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(match[1], name);
      assert.equal(Number(match[3]), holderPid);
      reasons.add(match[2]!);
    }
    assert.equal(reasons.size, 1, [...reasons].join('\n'));
  });

  test("as commands: `npm run keys -- --help` and the benchmark scripts' --help exit 0, an unknown flag exits 2 on stderr, a held data directory is one line on stderr and exit 1", async () => {
    // One at a time: a few tsx start-ups at once on a loaded 2-core machine are slower than in turn.
    const help = await spawned('npm', ['run', '-s', 'keys', '--', '--help'], path.join(root, 'npm-help'));
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage:/);
    assert.doesNotMatch(help.stderr, /ERR_PARSE_ARGS|\n\s+at /);

    const bogus = await spawned(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts', '--bogus'], path.join(root, 'bogus'));
    assert.equal(bogus.code, 2, bogus.stderr);
    assert.equal(bogus.stdout, '');
    assert.match(bogus.stderr, /^migrate: Unknown option '--bogus'.*\n\nusage: npm run migrate\n/);
    assert.equal(existsSync(path.join(root, 'bogus')), false);

    const holderPid = await held!;
    // The benchmark scripts are top-level programs (no main to call): spawned, their --help together.
    const benches = ['bench/run.ts', 'bench/backtest.ts', 'bench/soak.ts'];
    const helps = await Promise.all(benches.map((file) => spawned(process.execPath, ['--import', 'tsx', file, '--help'], root)));
    helps.forEach((run, i) => {
      assert.equal(run.code, 0, `${benches[i]} --help: ${run.stderr}`);
      assert.match(run.stdout, /^usage: npm run /, benches[i]);
    });
    const soak = await spawned(process.execPath, ['--import', 'tsx', 'bench/soak.ts', '--bogus'], root);
    assert.equal(soak.code, 2, soak.stderr);
    assert.match(soak.stderr, /^soak: Unknown option '--bogus'.*\n\nusage: npm run soak/);

    const refused = await spawned(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', 'list'], heldDir);
    assert.equal(refused.code, 1, refused.stderr);
    assert.equal(refused.stdout, '');
    const lines = refused.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, refused.stderr);
    const match = LOCK_LINE.exec(lines[0]!);
    assert.ok(match, lines[0]);
    assert.deepEqual([match[1], Number(match[3])], ['keys', holderPid]);
  });
});
