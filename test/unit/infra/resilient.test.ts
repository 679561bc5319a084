import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../../src/infra/logger/logger.js';
import type { Bar, FetchBarsOptions, MarketDataProvider } from '../../../src/infra/market-data/market-data.js';
import { MarketUnavailableError, isStaleBars, resilientFetches, type ResilienceOptions } from '../../../src/infra/market-data/resilient.js';
import { createSyntheticMarket } from '../../../src/infra/market-data/synthetic.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const LOOKBACK = { lookback: 10 };

/**
 * A real provider (the synthetic market) behind a switch: `mode` decides whether the next call reaches
 * it, fails, or never answers. The wrapper under test only sees the provider contract.
 */
function switchable() {
  const market = createSyntheticMarket({
    symbols: ['AAA', 'BBB', 'CCC'],
    seed: 3,
    historyBars: 50,
    startTime: new Date('2025-01-01T00:00:00Z'),
  });
  const state = { mode: 'up' as 'up' | 'fail' | 'hang', calls: 0 };
  const provider: MarketDataProvider = {
    name: 'switchable',
    listSymbols: () => market.listSymbols(),
    fetchBars(symbols: readonly string[], options: FetchBarsOptions) {
      state.calls++;
      if (state.mode === 'fail') return Promise.reject(new Error('connection refused'));
      if (state.mode === 'hang') return new Promise<Map<string, Bar[]>>(() => undefined);
      return market.fetchBars(symbols, options);
    },
  };
  return { market, provider, state };
}

const options = (overrides: Partial<ResilienceOptions> = {}): ResilienceOptions => ({
  timeoutMs: 200,
  retries: 0,
  backoffMs: 1,
  breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 60_000, volumeThreshold: 3 },
  lastGoodEntries: 100,
  logger,
  random: () => 0.5,
  ...overrides,
});

describe('resilientFetches', () => {
  test('answers fresh bars unmarked while the provider answers', async () => {
    const { provider } = switchable();
    const market = resilientFetches(provider, options());
    const bars = await market.fetchBars(['AAA', 'BBB'], LOOKBACK);
    assert.equal(bars.get('AAA')!.length, 10);
    assert.equal(isStaleBars(bars.get('AAA')), false);
    assert.equal(market.breakerState, 'closed');
    market.shutdown();
  });

  test('a failing provider: the last good bars come back marked stale, with their real times', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    const fresh = await market.fetchBars(['AAA', 'BBB'], LOOKBACK);
    state.mode = 'fail';
    const stale = await market.fetchBars(['AAA', 'BBB'], LOOKBACK);
    for (const symbol of ['AAA', 'BBB']) {
      assert.ok(isStaleBars(stale.get(symbol)), `${symbol} is marked stale`);
      assert.deepEqual(stale.get(symbol), fresh.get(symbol), 'the same bars, the same times');
      assert.equal(isStaleBars(fresh.get(symbol)), false, 'the fresh list is never marked after the fact');
    }
    market.shutdown();
  });

  test('a symbol with nothing remembered makes the call reject, carrying the stale answers it could give', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    await market.fetchBars(['AAA'], LOOKBACK);
    state.mode = 'fail';
    const error = await market.fetchBars(['AAA', 'CCC'], LOOKBACK).then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof MarketUnavailableError);
    assert.equal(error.reason, 'failed');
    assert.deepEqual([...error.stale.keys()], ['AAA']);
    assert.ok(isStaleBars(error.stale.get('AAA')));
    assert.match(error.message, /switchable/);
    market.shutdown();
  });

  test('answers are remembered per lookback and until: a different window is not served from another', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    await market.fetchBars(['AAA'], { lookback: 10 });
    state.mode = 'fail';
    await assert.rejects(market.fetchBars(['AAA'], { lookback: 20 }), MarketUnavailableError);
    await assert.rejects(market.fetchBars(['AAA'], { lookback: 10, until: new Date('2025-01-20T00:00:00Z') }), MarketUnavailableError);
    market.shutdown();
  });

  test('a hung provider times out per attempt and the stale bars are served', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options({ timeoutMs: 30 }));
    await market.fetchBars(['AAA'], LOOKBACK);
    state.mode = 'hang';
    const started = performance.now();
    const bars = await market.fetchBars(['AAA'], LOOKBACK);
    assert.ok(isStaleBars(bars.get('AAA')));
    assert.ok(performance.now() - started < 5_000, 'did not wait for the hung call');
    state.mode = 'fail';
    const error = await market.fetchBars(['BBB'], LOOKBACK).catch((e: unknown) => e);
    assert.ok(error instanceof MarketUnavailableError);
    market.shutdown();
  });

  test('a timeout is reported as such when nothing stale exists', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options({ timeoutMs: 20 }));
    state.mode = 'hang';
    const error = await market.fetchBars(['AAA'], LOOKBACK).catch((e: unknown) => e);
    assert.ok(error instanceof MarketUnavailableError);
    assert.equal(error.reason, 'timeout');
    market.shutdown();
  });

  test('retries: one failed attempt followed by a good one is a fresh answer', async () => {
    const { provider, state } = switchable();
    let failuresLeft = 1;
    const flaky: MarketDataProvider = {
      ...provider,
      fetchBars(symbols, fetchOptions) {
        if (failuresLeft-- > 0) {
          state.calls++;
          return Promise.reject(new Error('reset by peer'));
        }
        return provider.fetchBars(symbols, fetchOptions);
      },
    };
    const market = resilientFetches(flaky, options({ retries: 2 }));
    const bars = await market.fetchBars(['AAA'], LOOKBACK);
    assert.equal(isStaleBars(bars.get('AAA')), false);
    assert.equal(state.calls, 2);
    market.shutdown();
  });

  test('the breaker opens after repeated failures: calls stop reaching the provider, stale bars keep coming', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    const transitions: string[] = [];
    market.onBreakerStateChange((s) => transitions.push(s));
    await market.fetchBars(['AAA'], LOOKBACK);
    state.mode = 'fail';
    for (let i = 0; i < 5; i++) await market.fetchBars(['AAA'], LOOKBACK);
    assert.equal(market.breakerState, 'open');
    assert.deepEqual(transitions, ['open']);
    const callsWhenOpen = state.calls;
    for (let i = 0; i < 50; i++) assert.ok(isStaleBars((await market.fetchBars(['AAA'], LOOKBACK)).get('AAA')));
    assert.equal(state.calls, callsWhenOpen, 'an open breaker does not touch the provider');
    const error = await market.fetchBars(['BBB'], LOOKBACK).catch((e: unknown) => e);
    assert.ok(error instanceof MarketUnavailableError);
    assert.equal(error.reason, 'breaker-open');
    market.shutdown();
  });

  test('after the reset timeout one trial call goes through and a success closes the breaker', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(
      provider,
      options({ breaker: { errorThresholdPercentage: 50, resetTimeoutMs: 50, volumeThreshold: 2 } }),
    );
    const transitions: string[] = [];
    market.onBreakerStateChange((s) => transitions.push(s));
    await market.fetchBars(['AAA'], LOOKBACK);
    state.mode = 'fail';
    for (let i = 0; i < 4; i++) await market.fetchBars(['AAA'], LOOKBACK);
    assert.equal(market.breakerState, 'open');
    state.mode = 'up';
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(market.breakerState, 'half-open');
    const bars = await market.fetchBars(['AAA'], LOOKBACK);
    assert.equal(isStaleBars(bars.get('AAA')), false);
    assert.equal(market.breakerState, 'closed');
    assert.deepEqual(transitions, ['open', 'half-open', 'closed']);
    market.shutdown();
  });

  test('a listener that throws does not break the breaker', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    market.onBreakerStateChange(() => {
      throw new Error('listener bug');
    });
    await market.fetchBars(['AAA'], LOOKBACK);
    state.mode = 'fail';
    for (let i = 0; i < 5; i++) await market.fetchBars(['AAA'], LOOKBACK);
    assert.equal(market.breakerState, 'open');
    market.shutdown();
  });

  test('the last-good memory is bounded', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options({ lastGoodEntries: 1 }));
    await market.fetchBars(['AAA'], LOOKBACK);
    await market.fetchBars(['BBB'], LOOKBACK);
    state.mode = 'fail';
    assert.ok(isStaleBars((await market.fetchBars(['BBB'], LOOKBACK)).get('BBB')));
    await assert.rejects(market.fetchBars(['AAA'], LOOKBACK), MarketUnavailableError);
    market.shutdown();
  });

  test('bad options are refused with every problem named', () => {
    const { provider } = switchable();
    assert.throws(
      () => resilientFetches(provider, options({ timeoutMs: 0, retries: -1, lastGoodEntries: 0 })),
      (error: Error) =>
        error instanceof RangeError &&
        /timeoutMs/.test(error.message) &&
        /retries/.test(error.message) &&
        /lastGoodEntries/.test(error.message),
    );
  });

  test('after shutdown calls fail fast', async () => {
    const { provider, state } = switchable();
    const market = resilientFetches(provider, options());
    market.shutdown();
    const error = await market.fetchBars(['AAA'], LOOKBACK).catch((e: unknown) => e);
    assert.ok(error instanceof MarketUnavailableError);
    assert.equal(error.reason, 'shutdown');
    assert.equal(state.calls, 0);
  });
});
