import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Bar } from '../../src/infra/market-data/market-data.js';
import { createSyntheticMarket } from '../../src/infra/market-data/synthetic.js';
import { PredictionsDocument } from '../generated/graphql.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { execute } from '../helpers/graphql.js';
import { metricValue } from '../helpers/metrics.js';
import { stackName } from '../helpers/services.js';

const SYMBOLS = ['H01', 'H02', 'H03', 'H04', 'H05', 'H06'];

describe(`prediction history is recorded once per served prediction (${stackName})`, () => {
  let server: TestGateway;
  before(async () => {
    const market = createSyntheticMarket({ symbols: SYMBOLS, seed: 5, historyBars: 130, startTime: new Date('2024-06-01T00:00:00Z') });
    const bars: Bar[] = [...(await market.fetchBars(SYMBOLS, { lookback: 130 })).values()].flat();
    server = await startTestGateway({ HISTORY_FLUSH_INTERVAL_MS: '50' }, { bars });
  });
  after(async () => server.close());

  test('after any sequence of requests, history rows = the distinct (symbol, strategy, version, asOf) served', async () => {
    const served = new Map<string, { probability: number; signal: string }>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ symbols: fc.subarray(SYMBOLS, { minLength: 1 }), strategy: fc.constantFrom('direction-1d', 'direction-5d') }),
          { minLength: 1, maxLength: 6 },
        ),
        async (requests) => {
          await Promise.all(
            requests.map(async ({ symbols, strategy }) => {
              const { data, errors } = await execute(server.url, PredictionsDocument, { symbols, strategy });
              assert.equal(errors, undefined);
              for (const p of data!.predictions) {
                served.set(`${p!.symbol}|${p!.strategy}|${p!.model.version}|${p!.asOf}`, {
                  probability: p!.probability,
                  signal: p!.signal,
                });
              }
            }),
          );
          assert.equal(await server.gateway.history.flush(), true);
          const rows = await server.gateway.database.db
            .selectFrom('prediction_history')
            .select(['symbol', 'strategy', 'model_version', 'time', 'probability', 'signal'])
            .execute();
          const stored = new Map(
            rows.map((r) => [
              `${r.symbol}|${r.strategy}|${r.model_version}|${r.time.toISOString()}`,
              { probability: r.probability, signal: r.signal },
            ]),
          );
          assert.deepEqual(stored, served);
        },
      ),
      { numRuns: 8 },
    );
    assert.ok(served.size > 0);
    assert.equal(await metricValue(server.url, 'sibyl_history_rows_written_total'), served.size);
  });

  test('history appears in readiness, ok while writes succeed', async () => {
    const ready = (await (await fetch(`${server.url}/health/ready`)).json()) as { components: Array<{ name: string; status: string }> };
    assert.deepEqual(ready.components.find((c) => c.name === 'history')?.status, 'ok');
  });
});
