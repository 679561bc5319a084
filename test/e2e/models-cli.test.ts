import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { StrategyVersionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { corruptModelFile, eventually, modelsFixture, type ModelsFixture } from '../helpers/models.js';
import { runCliInProcess } from '../helpers/cli.js';
import { createTestDatabase, realPostgresUrl, stackName, testRedisEnv, type TestDatabase } from '../helpers/services.js';

const S = 'direction-1d';

/** `npm run models` in this process (test/helpers/cli.ts); exit codes and streams as a command's. */
const models = (args: string[], env: Record<string, string>) => runCliInProcess('models', args, env);

/** `npm run models -- list|verify|activate|rollback|shadow`, and a gateway following what it records. */
describe(`npm run models (${stackName})`, () => {
  let fixture: ModelsFixture;
  let database: TestDatabase;
  let env: Record<string, string>;
  let gateway: TestGateway | undefined;

  before(async () => {
    fixture = await modelsFixture([S]);
    await fixture.addVersion(S, 'v2', { createdAt: '2001-01-01T00:00:00.000Z', calibrationShift: 0.5 });
    await fixture.addVersion(S, 'v3bad', { damage: corruptModelFile });
    database = await createTestDatabase();
    env = { ...database.env, ...testRedisEnv(), MODELS_DIR: fixture.dir };
  });
  after(async () => {
    await gateway?.gateway.stop();
    await database?.drop();
    fixture?.remove();
  });

  test('verify: every version checked, the broken one refused with its reason, exit 1; one good version, exit 0', async () => {
    const all = await models(['verify'], env);
    assert.equal(all.code, 1);
    assert.match(all.stdout, /^ok {6}direction-1d\/v1: created/m);
    assert.match(all.stdout, /^ok {6}direction-1d\/v2: created/m);
    assert.match(all.stdout, /^REFUSED direction-1d\/v3bad: model\.onnx has sha256 .*\(corrupt or replaced file\)$/m);
    assert.match(all.stdout, /3 version\(s\) checked, 2 ok, 1 refused/);
    const one = await models(['verify', S, 'v2'], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /1 version\(s\) checked, 1 ok, 0 refused/);
  });

  test('activate records the version and the actor; a refusal exits 1 and changes nothing; a gateway serves what was recorded', async () => {
    if (realPostgresUrl) {
      // A running instance: it switches by event (Redis) or on its rescan tick.
      gateway = await startTestGateway({ ...env, MODELS_RESCAN_INTERVAL_MS: '200', SYNTHETIC_TICK_MS: '0' }, { database });
    }
    const activated = await models(['activate', S, 'v2'], env);
    assert.equal(activated.code, 0, activated.stderr);
    assert.match(activated.stdout, /^direction-1d: active v1 → v2, shadow none → none \(recorded by cli:.+\)$/m);

    const refused = await models(['activate', S, 'v3bad'], env);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^refused: cannot activate direction-1d@v3bad: model\.onnx has sha256 .*; direction-1d@v2 keeps serving$/m,
    );

    const shadow = await models(['shadow', S, 'v1'], env);
    assert.equal(shadow.code, 0, shadow.stderr);
    const list = await models(['list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ {2}ACTIVE v2 +created 2001-01-01/m);
    assert.match(list.stdout, /^ {2}SHADOW v1 +created/m);
    assert.match(list.stdout, /changed .* by cli:/);
    assert.match(list.stdout, /refused \(not servable\):\n {2}direction-1d\/v3bad: model\.onnx has sha256/);

    gateway ??= await startTestGateway({ ...env, SYNTHETIC_TICK_MS: '0' }, { database });
    const strategy = await eventually('the gateway to serve what the CLI recorded', async () => {
      const { data } = await execute(gateway!.url, StrategyVersionsDocument);
      const s = data?.strategies.find((x) => x.name === S);
      return s?.activeVersion.version === 'v2' && s.shadowVersion?.version === 'v1' ? s : undefined;
    });
    assert.equal(strategy.activeVersion.version, 'v2');
  });

  test('bad usage exits 1 with the usage text', async () => {
    const bad = await models(['activate', S], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /wrong number of arguments for "activate"[\s\S]*usage: npm run models/);
  });
});
