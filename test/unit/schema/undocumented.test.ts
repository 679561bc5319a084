import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildSchema } from 'graphql';
import { buildGatewaySchema } from '../../../src/schema/build-schema.js';
import { undocumentedSchemaParts } from '../../../src/schema/undocumented.js';

const SDL = `
  "A thing"
  type Thing {
    "documented"
    ok: String
    bare: String
    "documented, with one bare argument"
    withArgs("documented" a: Int, b: Int): String
  }
  "Input"
  input Window {
    "documented"
    from: String
    to: String
  }
  type Query {
    "documented"
    thing(window: Window): Thing
  }
`;

test('names every field, argument and input field without a description, and nothing else', () => {
  assert.deepEqual(undocumentedSchemaParts(buildSchema(SDL)), ['Query.thing(window)', 'Thing.bare', 'Thing.withArgs(b)', 'Window.to']);
});

test('a blank description counts as none', () => {
  assert.deepEqual(undocumentedSchemaParts(buildSchema('type Query { "  " a: Int }')), ['Query.a']);
});

test('the schema the gateway serves documents every field, argument and input field', async () => {
  assert.deepEqual(undocumentedSchemaParts(await buildGatewaySchema()), []);
});

test('the check npm run drift runs fails on an undocumented field and passes on the committed schema', async () => {
  const run = promisify(execFile);
  const tool = ['--import', 'tsx', 'tools/check-schema-docs.ts'];
  const dir = await mkdtemp(path.join(tmpdir(), 'schema-docs-'));
  try {
    const file = path.join(dir, 'schema.graphql');
    await writeFile(file, SDL);
    const failed = await run(process.execPath, [...tool, file]).then(
      () => assert.fail('expected exit 1'),
      (error: { code: number; stdout: string }) => error,
    );
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /undocumented: Thing\.bare\n/);
    assert.match(failed.stdout, /4 fields or arguments without a description/);
    const passed = await run(process.execPath, [...tool, 'schema.graphql']);
    assert.match(passed.stdout, /every field, argument and input field has a description/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
