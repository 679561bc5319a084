import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPgliteDatabase } from '../../src/infra/db/pglite.js';
import type { Database } from '../../src/infra/db/index.js';
import { projectRoot } from '../helpers/process.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI as `npm run <name> -- …` runs it, on the embedded database in `dataDir` (never DATABASE_URL). */
function cli(file: string, args: string[], dataDir: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', `src/cli/${file}.ts`, ...args],
      {
        cwd: projectRoot,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', DATA_DIR: dataDir },
        timeout: 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const CLIS = ['import', 'train', 'models', 'keys', 'outcomes', 'backtest', 'migrate', 'emit-schema', 'web-build', 'quality'];

describe('every CLI in src/cli: --help, unknown flags, a held data directory', { concurrency: true }, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'sibyl-cli-help-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('--help prints usage on stdout and exits 0 without doing anything; --bogus exits 2 with one line and the usage on stderr', async () => {
    // One CLI at a time (its two runs together): twenty tsx processes at once on a loaded 2-core
    // machine took longer than the 60 s each run is allowed.
    const runs = [];
    for (const name of CLIS) {
      const dataDir = path.join(root, `help-${name}`);
      const [help, bogus] = await Promise.all([cli(name, ['--help'], dataDir), cli(name, ['--bogus'], `${dataDir}-bogus`)]);
      runs.push({ name, dataDir, help, bogus });
    }
    for (const { name, dataDir, help, bogus } of runs) {
      assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
      assert.match(help.stdout, /^usage:/, `${name} --help stdout`);
      assert.equal(help.stderr, '', `${name} --help stderr`);
      assert.equal(existsSync(dataDir), false, `${name} --help created ${dataDir}`);

      assert.equal(bogus.code, 2, `${name} --bogus: ${bogus.stderr}`);
      assert.equal(bogus.stdout, '', `${name} --bogus stdout`);
      const [first, blank, usage] = bogus.stderr.split('\n');
      assert.match(first!, /Unknown option '--bogus'/, `${name} --bogus stderr`);
      assert.equal(blank, '');
      assert.match(usage!, /^usage/);
      assert.doesNotMatch(bogus.stderr, /\n\s+at /, `${name} --bogus printed a stack`);
      assert.equal(existsSync(`${dataDir}-bogus`), false, `${name} --bogus created its data directory`);
    }
  });

  describe('while another process holds the embedded database', () => {
    const dataDir = path.join(root, 'held');
    let holder: Database;
    before(async () => {
      holder = await createPgliteDatabase({ dataDir: path.join(dataDir, 'pglite') });
    });
    after(() => holder?.close());

    test('keys list, migrate, models list and quality say so in the same one line and exit 1', async () => {
      const runs = await Promise.all([
        cli('keys', ['list'], dataDir),
        cli('migrate', [], dataDir),
        cli('models', ['list'], dataDir),
        cli('quality', [], dataDir),
      ]);
      const reasons = runs.map((run) => {
        assert.equal(run.code, 1, run.stderr);
        assert.equal(run.stdout, '');
        const lines = run.stderr.split('\n').filter(Boolean);
        assert.equal(lines.length, 1, `expected one line, got:\n${run.stderr}`);
        const match = /^(keys|migrate|models|quality): (the embedded database in .* is in use by process (\d+); .*)$/.exec(lines[0]!);
        assert.ok(match, lines[0]);
        assert.equal(Number(match[3]), process.pid);
        return match[2];
      });
      assert.equal(new Set(reasons).size, 1, reasons.join('\n'));
    });
  });
});
