import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database } from '../../src/infra/db/index.js';
import { createLogger } from '../../src/infra/logger/logger.js';
import { RetrainAuditAction, RetrainRunsRepository } from '../../src/modules/retraining/index.js';
import { createTestDatabase, realPostgresUrl, stackName, type TestDatabase } from '../helpers/services.js';

/**
 * The claim that lets one instance train a scheduled tick (retrain_runs, migration 0011), over real SQL.
 * On PostgreSQL the two "instances" have their own connection pools, so their claims race in separate
 * sessions; PGlite admits one process, so there they share it (the statements are the same).
 */
describe(`retrain_runs claims (${stackName})`, () => {
  let testDb: TestDatabase;
  let a: Database;
  let b: Database;
  const silent = createLogger({ level: 'silent', format: 'json' });
  const S = 'direction-1d';
  const tick = (n: number) => new Date(Date.UTC(2026, 11, 4, 23, 30, n));

  before(async () => {
    testDb = await createTestDatabase();
    a = await openDatabase(testDb.settings, silent);
    await migrateToLatest(a.db);
    b = realPostgresUrl ? await openDatabase(testDb.settings, silent) : a;
  });
  after(async () => {
    if (b !== a) await b?.close();
    await a?.close();
    await testDb?.drop();
  });

  const audit = (action: string) =>
    a.db.selectFrom('audit_log').select(['actor', 'action', 'subject', 'detail']).where('action', '=', action).orderBy('id').execute();

  test('two instances claiming the same tick at once: exactly one wins, the other is told who has it', async () => {
    const ra = new RetrainRunsRepository(a.db);
    const rb = new RetrainRunsRepository(b.db);
    const claims = await Promise.all([
      ra.claim({ strategy: S, scheduledFor: tick(0), instance: 'A', ttlMs: 60_000, version: 'r0' }),
      rb.claim({ strategy: S, scheduledFor: tick(0), instance: 'B', ttlMs: 60_000, version: 'r0' }),
    ]);
    const winners = claims.filter((c) => c.claimed);
    assert.equal(winners.length, 1, JSON.stringify(claims));
    const loser = claims.find((c) => !c.claimed)!;
    assert.ok(!loser.claimed);
    assert.equal(loser.why, 'tick-claimed');
    const winner = claims[0]!.claimed ? 'A' : 'B';
    assert.equal(loser.holder?.instance, winner);
    const rows = await ra.recent(S);
    assert.deepEqual(
      rows.map((r) => [r.instance, r.status, r.version]),
      [[winner, 'running', 'r0']],
    );
  });

  test('the next tick while that run is still going is refused as running, on either instance; the index enforces it', async () => {
    const claim = await new RetrainRunsRepository(b.db).claim({
      strategy: S,
      scheduledFor: tick(1),
      instance: 'B',
      ttlMs: 60_000,
      version: 'r1',
    });
    assert.ok(!claim.claimed);
    assert.equal(claim.why, 'running');
    assert.equal(claim.holder?.scheduledFor.toISOString(), tick(0).toISOString());
    // Another strategy is free.
    const other = await new RetrainRunsRepository(b.db).claim({
      strategy: 'direction-5d',
      scheduledFor: tick(1),
      instance: 'B',
      ttlMs: 60_000,
      version: 'r1',
    });
    assert.ok(other.claimed);
    // A second running row of one strategy cannot exist, whatever writes it.
    await assert.rejects(
      sql`insert into retrain_runs (strategy, scheduled_for, instance, status, expires_at) values (${S}, ${tick(9)}, 'X', 'running', now() + interval '1 hour')`.execute(
        a.db,
      ),
      /retrain_runs_one_running_idx/,
    );
  });

  test('only the claimant finishes its run, with its audit row in the same transaction; then the next tick can be claimed', async () => {
    const repository = new RetrainRunsRepository(a.db);
    const owner = (await repository.recent(S))[0]!.instance;
    const stranger = owner === 'A' ? 'B' : 'A';
    assert.equal(
      await repository.finish({ strategy: S, scheduledFor: tick(0), instance: stranger, status: 'succeeded', version: 'r0', detail: {} }),
      false,
    );
    assert.equal(
      await repository.finish({
        strategy: S,
        scheduledFor: tick(0),
        instance: owner,
        status: 'succeeded',
        version: 'r0',
        detail: { heldOut: { brier: 0.25 } },
      }),
      true,
    );
    const [row] = await audit(RetrainAuditAction.RETRAINED);
    assert.deepEqual(row, {
      actor: 'scheduler',
      action: 'model.retrained',
      subject: S,
      detail: { version: 'r0', scheduledFor: tick(0).toISOString(), instance: owner, heldOut: { brier: 0.25 } },
    });
    assert.equal(
      await repository.finish({ strategy: S, scheduledFor: tick(0), instance: owner, status: 'failed', version: 'r0', detail: {} }),
      false,
      'a finished run is not finished twice',
    );
    const next = await repository.claim({ strategy: S, scheduledFor: tick(2), instance: stranger, ttlMs: 60_000, version: 'r2' });
    assert.ok(next.claimed);
  });

  test("a claim whose instance died (past expires_at, by the database's clock) is failed, audited and taken over", async () => {
    const repository = new RetrainRunsRepository(b.db);
    // The run of tick(2) is still `running`; make it expire as if its instance had died an hour ago.
    await sql`update retrain_runs set expires_at = now() - interval '1 second' where strategy = ${S} and status = 'running'`.execute(a.db);
    const claim = await repository.claim({ strategy: S, scheduledFor: tick(3), instance: 'C', ttlMs: 60_000, version: 'r3' });
    assert.ok(claim.claimed);
    assert.equal(claim.expired.length, 1);
    assert.equal(claim.expired[0]!.scheduledFor.toISOString(), tick(2).toISOString());
    const runs = await repository.recent(S);
    assert.deepEqual(
      runs.slice(0, 2).map((r) => [r.scheduledFor.toISOString(), r.instance, r.status]),
      [
        [tick(3).toISOString(), 'C', 'running'],
        [tick(2).toISOString(), claim.expired[0]!.instance, 'failed'],
      ],
    );
    assert.match(String(runs[1]!.detail.reason), /abandoned/);
    const failed = await audit(RetrainAuditAction.FAILED);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.detail.stage, 'abandoned');
    assert.match(String(failed[0]!.detail.reason), /never finished it; taken over by C/);
    // The vanished claimant, should it come back, cannot overwrite the outcome.
    assert.equal(
      await repository.finish({
        strategy: S,
        scheduledFor: tick(2),
        instance: claim.expired[0]!.instance,
        status: 'succeeded',
        version: 'r2',
        detail: {},
      }),
      false,
    );
  });

  test('lastFinished: the newest finish per strategy and outcome, running rows left out', async () => {
    const repository = new RetrainRunsRepository(a.db);
    await repository.finish({
      strategy: S,
      scheduledFor: tick(3),
      instance: 'C',
      status: 'cancelled',
      version: 'r3',
      detail: { reason: 'shutdown' },
    });
    const last = await repository.lastFinished();
    const byKey = new Map(last.map((r) => [`${r.strategy}/${r.status}`, r.finishedAt]));
    assert.deepEqual([...byKey.keys()].sort(), [`${S}/cancelled`, `${S}/failed`, `${S}/succeeded`]);
    assert.ok(byKey.get(`${S}/cancelled`)! >= byKey.get(`${S}/failed`)!);
  });
});
