import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOnnxEngine } from '../../../src/infra/inference/onnx.js';
import { createLogger } from '../../../src/infra/logger/logger.js';
import { ModelRegistry, ModelsService } from '../../../src/modules/models/index.js';
import { modelsFixture, type ModelsFixture } from '../../helpers/models.js';

const S = 'direction-1d';

/** `Prediction.model` asks for a version's view once per item: one view per version and serving state, current after every change. */
describe('ModelsService.view', () => {
  let fixture: ModelsFixture;
  let registry: ModelRegistry;
  before(async () => {
    fixture = await modelsFixture([S]);
    await fixture.addVersion(S, 'v2', { createdAt: '2001-01-01T00:00:00.000Z', calibrationShift: 0.7 });
    registry = await ModelRegistry.load({
      directory: fixture.dir,
      engine: createOnnxEngine(),
      batching: { maxBatchSize: 8, maxQueueDelayMs: 0 },
      logger: createLogger({ level: 'silent', format: 'json' }),
    });
  });
  after(async () => {
    await registry.close();
    fixture.remove();
  });

  test('the same view while nothing changes; a current one after activation and shadowing', () => {
    const models = new ModelsService({ registry });
    const v1 = registry.find(S, 'v1')!;
    const v2 = registry.find(S, 'v2')!;
    registry.setServing(S, { active: v1 });
    const first = models.view(v1);
    assert.equal(models.view(v1), first);
    assert.deepEqual([first.active, first.shadow, models.view(v2).active], [true, false, false]);
    assert.equal(first.createdAt.toISOString(), new Date(v1.manifest.createdAt).toISOString());

    registry.setServing(S, { active: v2, shadow: v1 });
    const now = models.view(v1);
    assert.deepEqual([now.active, now.shadow, models.view(v2).active, models.view(v2).shadow], [false, true, true, false]);
    assert.equal(now.id, first.id);
    assert.equal(first.active, true, 'a view already handed out is not changed');

    registry.setServing(S, { active: v1 });
    assert.deepEqual([models.view(v1).active, models.view(v1).shadow, models.view(v2).active], [true, false, false]);
  });
});
