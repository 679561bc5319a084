import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { inSpan, startSpan } from '../../../src/infra/tracing/tracing.js';

test('inSpan and startSpan without a provider give a non-recording span; once one is registered they record', async () => {
  assert.equal(await inSpan('untraced', {}, async (span) => (span.isRecording() ? 'recording' : 'not recording')), 'not recording');
  await assert.rejects(
    inSpan('untraced', {}, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );

  assert.equal(startSpan('untraced.phase').isRecording(), false);

  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  try {
    assert.equal(await inSpan('traced', { a: 1 }, async (span) => (span.isRecording() ? 'recording' : 'not recording')), 'recording');
    const phase = startSpan('traced.phase');
    assert.equal(phase.isRecording(), true);
    phase.end();
    await assert.rejects(
      inSpan('failed', {}, async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(
      exporter.getFinishedSpans().map((s) => [s.name, s.status.code]),
      [
        ['traced', 0],
        ['traced.phase', 0],
        ['failed', 2],
      ],
    );
  } finally {
    trace.disable();
    context.disable();
  }
});
