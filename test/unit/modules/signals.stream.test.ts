import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PredictionRecord } from '../../../src/modules/predictions/index.js';
import { SignalStream } from '../../../src/modules/signals/signals.stream.js';

/** Just enough of a prediction for the stream: symbol, asOf, confidence and the model version. */
function prediction(symbol: string, day: number, confidence = 0.6, version = 'v1'): PredictionRecord {
  return { symbol, asOf: new Date(Date.UTC(2024, 0, day)), confidence, model: { manifest: { version } } } as unknown as PredictionRecord;
}
const label = (r: PredictionRecord) =>
  `${r.symbol}@${r.asOf.getUTCDate()}${r.model.manifest.version === 'v1' ? '' : `/${r.model.manifest.version}`}`;

async function take(stream: SignalStream, count: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < count) {
    const next = await stream.next();
    if (next.done) break;
    out.push(label(next.value));
  }
  return out;
}

describe('SignalStream', () => {
  test('replay first, then what was pushed meanwhile, skipping what the replay already delivered (the seam)', async () => {
    const stream = new SignalStream({ minConfidence: 0, maxQueued: 100, onClose: () => undefined });
    // Live events arrive while history is being read: day 3 overlaps the replay, day 4 does not.
    stream.push(prediction('A', 3));
    stream.push(prediction('B', 3));
    stream.push(prediction('A', 4));
    stream.setReplay([prediction('A', 2), prediction('B', 2), prediction('A', 3), prediction('B', 3)]);
    assert.deepEqual(await take(stream, 5), ['A@2', 'B@2', 'A@3', 'B@3', 'A@4']);
    stream.push(prediction('A', 4)); // a new monitor republishing the last bar after a takeover
    stream.push(prediction('A', 3)); // and an older one: never delivered out of order
    stream.push(prediction('A', 4, 0.6, 'v2')); // another model version of the same bar is news
    stream.push(prediction('B', 4));
    assert.deepEqual(await take(stream, 2), ['A@4/v2', 'B@4']);
    stream.close();
  });

  test('minConfidence filters, and a filtered prediction still counts as delivered', async () => {
    const stream = new SignalStream({ minConfidence: 0.55, maxQueued: 100, onClose: () => undefined });
    stream.setReplay([prediction('A', 1, 0.5), prediction('A', 2, 0.7)]);
    stream.push(prediction('A', 1, 0.9)); // same bar as a filtered one: not sent
    stream.push(prediction('A', 3, 0.56));
    assert.deepEqual(await take(stream, 2), ['A@2', 'A@3']);
    stream.close();
  });

  test('return() ends a stream that is waiting for its next event, and onClose runs once', async () => {
    let closed = 0;
    const stream = new SignalStream({ minConfidence: 0, maxQueued: 100, onClose: () => closed++ });
    const pending = stream.next();
    await stream.return();
    assert.deepEqual(await pending, { done: true, value: undefined });
    await stream.return();
    stream.push(prediction('A', 1));
    assert.deepEqual(await stream.next(), { done: true, value: undefined });
    assert.equal(closed, 1);
  });

  test('a consumer too far behind is ended with UNAVAILABLE rather than buffering without bound', async () => {
    let closed = 0;
    const stream = new SignalStream({ minConfidence: 0, maxQueued: 3, onClose: () => closed++ });
    for (let day = 1; day <= 4; day++) stream.push(prediction('A', day));
    await assert.rejects(stream.next(), (error: Error & { extensions?: { code?: string } }) => {
      assert.equal(error.extensions?.code, 'UNAVAILABLE');
      assert.match(error.message, /resubscribe with since/);
      return true;
    });
    assert.deepEqual(await stream.next(), { done: true, value: undefined });
    await stream.return();
    assert.equal(closed, 1);
  });
});
