import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { projectRoot } from '../helpers/process.js';
import { stackName } from '../helpers/services.js';

/**
 * Connections that come and go must leave nothing behind. The case that did: each JWT connection armed
 * an unref'd timer for its `exp`, and Node keeps the emptied timer list of a cleared unref'd timer until
 * the original duration runs out, so every closed connection left one list behind for the token's
 * lifetime (found in a soak's heap snapshots; src/server/ws.expiry.ts tells the story). With a timer
 * per connection this test sees one new list per connection.
 */
test(`WebSocket connections with JWTs that open and close leave no timer lists behind (${stackName})`, async () => {
  const connections = 150;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-internals', '--import', 'tsx', path.join('test', 'fixtures', 'ws-connection-churn.ts'), String(connections)],
    { cwd: projectRoot, env: process.env, timeout: 120_000 },
  );
  const outcome = JSON.parse(stdout.trim().split('\n').at(-1)!) as { connections: number; before: number; after: number };
  assert.equal(outcome.connections, connections);
  // A few lists may come and go with the gateway's own periodic work; one per connection may not.
  assert.ok(outcome.after - outcome.before < 10, `timer lists ${outcome.before} → ${outcome.after} after ${connections} connections`);
});
