import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CONFIG_DOCS, loadConfig, redactUrl } from '../../../src/config/index.js';
import { projectRoot } from '../../helpers/process.js';
import { configProblems } from '../../helpers/config.js';

const problemsOf = configProblems;

describe('loadConfig', () => {
  test('an empty environment gives the embedded defaults', () => {
    const config = loadConfig({}, '/srv/sibyl');
    assert.equal(config.port, 4000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.env, 'development');
    assert.deepEqual(config.database, { kind: 'pglite', dataDir: '/srv/sibyl/data/pglite' });
    assert.equal(config.redis, undefined);
    assert.equal(config.graphql.introspection, true);
    assert.deepEqual(config.explorer, { page: 'sandbox', sandboxTelemetry: false, dir: '/srv/sibyl/web/dist' });
    assert.equal(config.log.format, 'pretty');
  });

  test('production switches logs to JSON, introspection off and the built-in explorer', () => {
    const config = loadConfig({ NODE_ENV: 'production' });
    assert.equal(config.log.format, 'json');
    assert.equal(config.graphql.introspection, false);
    assert.equal(config.explorer.page, 'graphiql');
    assert.equal(loadConfig({ NODE_ENV: 'production', EXPLORER: 'sandbox' }).explorer.page, 'sandbox');
    assert.equal(loadConfig({ EXPLORER: 'off', SANDBOX_TELEMETRY: 'true' }).explorer.page, 'off');
    assert.equal(loadConfig({ SANDBOX_TELEMETRY: 'true' }).explorer.sandboxTelemetry, true);
    assert.equal(loadConfig({ NODE_ENV: 'production', INTROSPECTION: 'true' }).graphql.introspection, true);
  });

  test('DATABASE_URL and REDIS_URL select the real services', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/sibyl', REDIS_URL: 'redis://cache:6379/2', REDIS_KEY_PREFIX: 'x:' });
    assert.deepEqual(config.database, { kind: 'postgres', url: 'postgres://u:p@db:5432/sibyl', poolMax: 10 });
    assert.deepEqual(config.redis, { url: 'redis://cache:6379/2', keyPrefix: 'x:' });
  });

  test('an empty string counts as unset', () => {
    assert.equal(loadConfig({ PORT: '', DATABASE_URL: '' }).port, 4000);
    assert.equal(loadConfig({ DATABASE_URL: '' }).database.kind, 'pglite');
  });

  test('every bad variable is named at once, with the reason', () => {
    const problems = problemsOf({
      PORT: 'abc',
      DATABASE_URL: 'mysql://root@db/x',
      REDIS_URL: 'not a url',
      LOG_LEVEL: 'loud',
      INTROSPECTION: 'maybe',
      SHUTDOWN_TIMEOUT_MS: '5',
    });
    assert.deepEqual(Object.keys(problems).sort(), [
      'DATABASE_URL',
      'INTROSPECTION',
      'LOG_LEVEL',
      'PORT',
      'REDIS_URL',
      'SHUTDOWN_TIMEOUT_MS',
    ]);
    assert.match(problems.PORT!, /integer between 0 and 65535.*"abc"/);
    assert.match(problems.DATABASE_URL!, /postgres:\/\//);
    assert.match(problems.SHUTDOWN_TIMEOUT_MS!, /at least 100/);
  });

  test('out-of-range ports are refused', () => {
    assert.match(problemsOf({ PORT: '70000' }).PORT!, /at most 65535/);
    assert.match(problemsOf({ PORT: '-1' }).PORT!, /at least 0/);
  });

  test('a bad URL never echoes its text, which may hold a password', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://admin:hunter2@db/x' });
    assert.doesNotMatch(problems.DATABASE_URL!, /hunter2/);
  });

  test('redactUrl hides passwords', () => {
    assert.equal(redactUrl('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
    assert.equal(redactUrl('nonsense'), '(unparseable URL)');
  });

  test("the README's configuration table is the variable table's, row for row", () => {
    const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8').split('\n');
    const expected = CONFIG_DOCS.map((d) => `| \`${d.name}\` | ${d.default} | ${d.description} |`);
    const start = readme.findIndex((line) => line.startsWith(`| \`${CONFIG_DOCS[0]!.name}\` |`));
    const rows = readme.slice(start, start + expected.length);
    assert.deepEqual(rows, expected, `README.md's configuration table should read (from src/config/variables.ts):\n${expected.join('\n')}`);
  });
});
