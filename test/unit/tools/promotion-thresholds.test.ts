import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { projectRoot } from '../../helpers/process.js';

const run = promisify(execFile);
const TOOL = path.join(projectRoot, 'tools/promotion-thresholds.ts');

/** The measuring tool behind docs/decisions/promotion.md: --help exits 0, a wrong call exits 2 with the usage. */
test('tools/promotion-thresholds: --help exits 0 with the usage; a wrong call exits 2 and says why', async () => {
  const help = await run(process.execPath, ['--import', 'tsx', TOOL, '--help'], { cwd: projectRoot });
  assert.match(help.stdout, /^usage: node --import tsx tools\/promotion-thresholds\.ts <data dir> <models dir>/);
  for (const args of [[], ['only-one'], ['a', 'b', '--days', 'x']]) {
    const wrong = await run(process.execPath, ['--import', 'tsx', TOOL, ...args], { cwd: projectRoot }).then(
      () => assert.fail(`exit 0 for ${JSON.stringify(args)}`),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(wrong.code, 2, JSON.stringify(args));
    assert.match(wrong.stderr, /promotion-thresholds: expected a data directory and a models directory\n\nusage:/);
  }
});
