import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createRedisLease } from '../../../src/infra/coordination/lease.js';
import { createLogger } from '../../../src/infra/logger/logger.js';

/**
 * Running alone ends when the results can travel through Redis again (`sharedReady`), not merely when
 * Redis answers a command: an instance whose event subscription is still reconnecting would otherwise
 * step down and leave its clients hearing nobody. A Redis stand-in the test switches off and on.
 */
const logger = createLogger({ level: 'silent', format: 'json' });
const waitFor = async (condition: () => boolean, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Redis lease: running alone until shared results can travel again', () => {
  test('Redis answers while the event connections are still away: it stays alone; once they are back, it contends (and steps down to the holder)', async () => {
    let up = true;
    const keys = new Map<string, string>([['lease', 'the other holder']]);
    const redis = {
      set: async (key: string, token: string) => {
        if (!up) throw new Error('connect ECONNREFUSED');
        if (keys.has(key)) return null;
        keys.set(key, token);
        return 'OK';
      },
      eval: async () => {
        if (!up) throw new Error('connect ECONNREFUSED');
        return 0;
      },
    } as unknown as Pick<Redis, 'set' | 'eval'>;
    let ready = true;
    const ttlMs = 150;
    const changes: boolean[] = [];
    const lease = createRedisLease({ redis, key: 'lease', ttlMs, logger, aloneWhenUnreachable: true, sharedReady: () => ready });
    lease.start((held) => changes.push(held));
    try {
      await new Promise((r) => setTimeout(r, ttlMs));
      assert.equal(lease.held, false, 'another instance holds it');

      up = false;
      ready = false;
      await waitFor(() => lease.held, ttlMs * 4, 'running alone');
      assert.equal(lease.alone, true);

      up = true; // commands answer again, but events cannot cross yet
      await new Promise((r) => setTimeout(r, ttlMs * 2));
      assert.equal(lease.held, true, 'still running alone');
      assert.equal(lease.alone, true);

      ready = true;
      await waitFor(() => !lease.held, ttlMs * 2, 'stepping down to the shared holder');
      assert.equal(lease.alone, false);
      assert.deepEqual(changes, [true, false]);
    } finally {
      await lease.stop();
    }
  });
});
